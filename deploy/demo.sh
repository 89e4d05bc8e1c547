#!/usr/bin/env bash
# The README's first command: a working Maruhi on the embedded defaults, from a fresh clone.
# Installs into .venv, starts a local upstream sink (delivered mail lands in var/sink/) and the
# relay on 127.0.0.1:10025 with the example rules, SQLite + files under var/maruhi/.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${MARUHI_VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check '.[fast]'

mkdir -p var/sink var/maruhi
"$VENV/bin/maruhi" sink --listen 127.0.0.1:10026 --dir var/sink &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT INT TERM
exec_args=(serve --rules rules/example-en.yaml --data-dir var/maruhi
           --listen 127.0.0.1:10025 --upstream 127.0.0.1:10026)
echo "demo: relay on 127.0.0.1:10025, upstream sink on 127.0.0.1:10026 (mail in var/sink/)"
echo "demo: review UI on http://127.0.0.1:8025/ (create an account: .venv/bin/maruhi users add NAME --roles admin --data-dir var/maruhi)"
echo "demo: try  swaks --server 127.0.0.1:10025 --to buyer@other.example --body 'Status of Project Bluebird attached.'"
"$VENV/bin/maruhi" "${exec_args[@]}"
