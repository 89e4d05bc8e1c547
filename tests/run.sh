#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a machine with only Python 3.11 and pip:
# system peers the tests talk to (swaks, Postfix's smtp-source/smtp-sink) when we may install
# them, a virtualenv with the product and its test tools, then lint, types, the import contract
# and pytest. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${MARUHI_VENV:-.venv}

install_system_packages() {
    # Real peers the tests talk to: swaks (SMTP client), Postfix's smtp-source/smtp-sink (relay
    # load), Debian's chromium + CJK fonts (browser tests via Playwright, never a downloaded
    # browser), Dovecot (IMAP poller). Only as root with apt; otherwise the tests that need a
    # missing peer are skipped and say why.
    local want=()
    command -v swaks >/dev/null 2>&1 || want+=(swaks)
    [ -x /usr/sbin/smtp-source ] || want+=(postfix)
    [ -x /usr/bin/chromium ] || want+=(chromium)
    [ -d /usr/share/fonts/opentype/noto ] || want+=(fonts-noto-cjk)
    [ -x /usr/sbin/dovecot ] || want+=(dovecot-imapd)
    [ ${#want[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "run.sh: not root or no apt-get; not installing ${want[*]}" >&2
        return 0
    fi
    echo "run.sh: installing ${want[*]}" >&2
    # Keep package scripts from starting daemons (postfix on :25, dovecot on :143).
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" \
        >/dev/null 2>&1 || echo "run.sh: apt-get install ${want[*]} failed" >&2
    [ "$created" = 1 ] && rm -f "$policy"
    return 0
}

install_system_packages

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test,fast]'

export PATH="$PWD/$VENV/bin:$PATH"
export PYTHONASYNCIODEBUG=1

echo "== ruff"
ruff check scanner tests
echo "== mypy"
mypy scanner
echo "== import contract"
lint-imports
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
