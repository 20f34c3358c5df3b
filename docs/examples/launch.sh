#!/bin/sh
# The HTTP part of joining an Arena match, with curl: an operator's API token, a new
# match (PUT /api/match), then a game token for each player.
#
#   sh launch.sh OPERATOR:PASSWORD PLAYER:PASSWORD PLAYER:PASSWORD
#   sh launch.sh ops:ops alice:alice bob:bob            # the users of `make demo`
#
# ARENA_API (default http://127.0.0.1:8000) is the Django site, POINTS (default 3)
# the points to win. Prints one line for the match, then one per player:
#
#   match 6f1c… 127.0.0.1 25000
#   alice left eyJ1Ijo…
#   bob right eyJ1Ijo…
#
# then play with, for example,
#   python3 docs/examples/player.py --host 127.0.0.1 --port 25000 --token eyJ1Ijo…
# In real life the operator is a matchmaker and each player fetches its own game
# token; this script knows every password only to show all three steps at once.
# Needs curl and python3 (to read JSON).
set -eu

API=${ARENA_API:-http://127.0.0.1:8000}
POINTS=${POINTS:-3}
[ $# -eq 3 ] || { echo "usage: $0 OPERATOR:PASSWORD PLAYER:PASSWORD PLAYER:PASSWORD" >&2; exit 2; }

# field NAME: a field of the JSON object on stdin
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

nl='
'  # a newline
# call METHOD PATH [TOKEN [BODY]]: the response body; on an HTTP error, say it and stop
call() {
  out=$(curl --silent --show-error --max-time 30 --write-out "$nl%{http_code}" -X "$1" "$API$2" \
        -H 'Content-Type: application/json' ${3:+-H "Authorization: Token $3"} ${4:+-d "$4"}) || exit 1
  case ${out##*"$nl"} in
    2??) printf '%s\n' "${out%"$nl"*}" ;;
    *) echo "$1 $2: ${out##*"$nl"} ${out%"$nl"*}" >&2; exit 1 ;;  # {"error": code, "detail": text}
  esac
}

# 1. an API token: POST /api/auth/token {"username", "password"} -> {"token"}
api_token() {  # USER:PASSWORD
  answer=$(call POST /api/auth/token "" "{\"username\": \"${1%%:*}\", \"password\": \"${1#*:}\"}")
  echo "$answer" | field token
}

# 2. as the operator: PUT /api/match, answered once the game server listens
ops=$(api_token "$1")
match=$(call PUT /api/match "$ops" "{\"players\": [\"${2%%:*}\", \"${3%%:*}\"], \"points_to_win\": $POINTS}")
id=$(echo "$match" | field id)
echo "match $id $(echo "$match" | field host) $(echo "$match" | field port)"

# 3. as each player: its own API token, then GET /api/match/<id>/token -> {"token", "expires_in"}
for side in left right; do
  if [ $side = left ]; then player=$2; else player=$3; fi  # the first player plays left
  answer=$(call GET "/api/match/$id/token" "$(api_token "$player")")
  echo "${player%%:*} $side $(echo "$answer" | field token)"
done
