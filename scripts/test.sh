#!/usr/bin/env bash
# The whole suite: JavaScript unit tests, then the Python suite on SQLite with the
# in-memory layer, then again on PostgreSQL and Redis when they answer on
# 127.0.0.1. In CI (CI=true) those services must be there: never skipped silently.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
ran=()

answers() { # host port
  "$PY" - "$1" "$2" <<'PYEOF'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PYEOF
}

bash scripts/ensure-chromium.sh || { echo "could not install chromium"; status=1; }

echo "== JavaScript unit tests (node --test)"
if node --test tests/js/; then ran+=("js: passed"); else ran+=("js: FAILED"); status=1; fi

echo "== Python suite on SQLite, in-memory channel layer"
if env -u DATABASE_URL -u REDIS_URL "$PY" -m pytest "$@"; then ran+=("sqlite+memory: passed"); else ran+=("sqlite+memory: FAILED"); status=1; fi

pg_url=${ARENA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
redis_url=${ARENA_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
if answers 127.0.0.1 5432 && answers 127.0.0.1 6379; then
  echo "== Python suite on PostgreSQL, Redis channel layer"
  if DATABASE_URL=$pg_url REDIS_URL=$redis_url "$PY" -m pytest "$@"; then
    ran+=("postgresql+redis: passed")
  else
    ran+=("postgresql+redis: FAILED"); status=1
  fi
elif [[ "${CI:-}" == "true" ]]; then
  echo "PostgreSQL or Redis does not answer on 127.0.0.1, but CI needs them"; ran+=("postgresql+redis: MISSING"); status=1
else
  ran+=("postgresql+redis: skipped (not reachable on 127.0.0.1:5432/6379)")
fi

echo "== Backends"
printf '  %s\n' "${ran[@]}"
exit $status
