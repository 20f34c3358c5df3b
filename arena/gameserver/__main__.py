"""`python -m arena.gameserver <match id>`: serve one match."""
from __future__ import annotations

import sys

from arena.gameserver.contract import EXIT_USAGE


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m arena.gameserver <match id>", file=sys.stderr)
        return EXIT_USAGE
    from arena.gameserver.main import prepare, serve

    prepare()
    return serve(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
