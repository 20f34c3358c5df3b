"""`python -m arena.gameserver <match id>`: serve one match."""
from __future__ import annotations

import sys

from arena.gameserver.contract import EXIT_INSECURE_SETTINGS, EXIT_USAGE


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m arena.gameserver <match id>", file=sys.stderr)
        return EXIT_USAGE
    from arena.gameserver.contract import error_line
    from arena.gameserver.main import announce, prepare, serve
    from arena.security.secret_key import InsecureSettings

    try:
        prepare()
    except InsecureSettings as error:
        print(error, file=sys.stderr)
        announce(error_line(error.code, str(error)))
        return EXIT_INSECURE_SETTINGS
    return serve(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
