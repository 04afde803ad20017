#!/usr/bin/env bash
# setup.sh [VENV_DIR] — private virtualenv with the pinned RapidSMS stack.
# Default VENV_DIR: <repo>/target/bench/rapidsms-venv. Idempotent: when the
# venv already matches requirements.lock it only prints the versions.
# PYTHON=... selects the interpreter (default python3; needs >= 3.10).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${1:-$REPO/target/bench/rapidsms-venv}
LOCK=$HERE/requirements.lock
PY=${PYTHON:-python3}
STAMP=$VENV/.rapidsms-bench-lock.sha256
want=$(sha256sum "$LOCK" | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "setup.sh: $VENV already matches requirements.lock" >&2
else
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
        echo "setup.sh: $PY is $("$PY" --version 2>&1); Django 5.1 needs Python >= 3.10" >&2
        exit 1
    }
    if [ ! -x "$VENV/bin/python" ]; then
        echo "setup.sh: creating $VENV with $("$PY" --version 2>&1)" >&2
        mkdir -p "$(dirname "$VENV")"
        "$PY" -m venv "$VENV"
    fi
    rm -f "$STAMP"
    echo "setup.sh: installing requirements.lock into $VENV" >&2
    # --no-deps: the lock lists the whole closure, so nothing floats.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-deps -r "$LOCK"
    "$VENV/bin/python" -m pip check >&2
    echo "$want" >"$STAMP"
fi

"$VENV/bin/python" - <<'PY'
import sys
from importlib.metadata import version

print(f"python {sys.version.split()[0]} ({sys.executable})")
for name in ("RapidSMS", "Django", "gunicorn", "celery", "django-tables2",
             "django-selectable", "djappsettings", "requests"):
    print(f"{name} {version(name)}")
import sqlite3
print(f"sqlite {sqlite3.sqlite_version}")
PY
