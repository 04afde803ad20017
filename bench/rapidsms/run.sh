#!/usr/bin/env bash
# run.sh PORT [WORKERS] — start RapidSMS (Kannel backend view) under gunicorn
# on 127.0.0.1:PORT with WORKERS sync workers (default 2 = cores), on a fresh
# SQLite file, wait until it answers, print the gunicorn master PID on stdout
# (only that; progress goes to stderr) and exit, leaving it running.
# Stop it with: stop.sh PID   (or kill PID: SIGTERM stops workers and the
# fake Kannel responder too).
#
# Environment (optional):
#   RAPIDSMS_VENV       virtualenv (default <repo>/target/bench/rapidsms-venv;
#                       created/checked by setup.sh, fast when already done)
#   RAPIDSMS_BENCH_DB   SQLite file (default <repo>/target/bench/rapidsms-PORT.sqlite3);
#                       deleted and re-migrated on every start
#   RAPIDSMS_BENCH_LOG  gunicorn log (default <repo>/target/bench/rapidsms-PORT.log)
#   RAPIDSMS_BENCH_SENDSMS_URL  use this Kannel sendsms URL instead of the
#                       built-in loopback fake (see project/gunicorn.conf.py)
#   RAPIDSMS_BENCH_SYNCHRONOUS, RAPIDSMS_BENCH_CONN_MAX_AGE: see settings.py
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 PORT [WORKERS]" >&2
    exit 2
fi
PORT=$1
WORKERS=${2:-2}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/target/bench
VENV=${RAPIDSMS_VENV:-$OUT/rapidsms-venv}
export RAPIDSMS_BENCH_DB=${RAPIDSMS_BENCH_DB:-$OUT/rapidsms-$PORT.sqlite3}
LOG=${RAPIDSMS_BENCH_LOG:-$OUT/rapidsms-$PORT.log}
PIDFILE=$OUT/rapidsms-$PORT.pid
mkdir -p "$OUT" "$(dirname "$RAPIDSMS_BENCH_DB")" "$(dirname "$LOG")"

"$HERE/setup.sh" "$VENV" >&2

if "$VENV/bin/python" - "$PORT" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
then
    echo "run.sh: something already listens on 127.0.0.1:$PORT" >&2
    exit 1
fi

cd "$HERE/project"
export DJANGO_SETTINGS_MODULE=benchproj.settings
rm -f "$RAPIDSMS_BENCH_DB" "$RAPIDSMS_BENCH_DB-wal" "$RAPIDSMS_BENCH_DB-shm" "$PIDFILE"
echo "run.sh: migrating fresh $RAPIDSMS_BENCH_DB" >&2
"$VENV/bin/python" manage.py migrate --noinput -v 0 >&2

echo "run.sh: starting gunicorn on 127.0.0.1:$PORT, $WORKERS sync workers, log $LOG" >&2
: >"$LOG"
# setsid: own session, so the caller's terminal signals don't reach it.
# stdin/stdout/stderr detached, so $(run.sh ...) returns immediately.
setsid "$VENV/bin/gunicorn" \
    --config "$HERE/project/gunicorn.conf.py" \
    --bind "127.0.0.1:$PORT" \
    --workers "$WORKERS" \
    --worker-class sync \
    --pid "$PIDFILE" \
    --error-logfile "$LOG" \
    --log-level info \
    benchproj.wsgi:application \
    </dev/null >>"$LOG" 2>&1 &
LAUNCHED=$!

# Wait (max 60 s) for the pid file and for /healthz to answer 200.
if ! "$VENV/bin/python" - "$PORT" "$PIDFILE" "$LAUNCHED" <<'PY'
import os, sys, time, urllib.request
port, pidfile, launched = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(launched, 0)
    except ProcessLookupError:
        sys.exit("gunicorn exited during startup")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            if r.status == 200 and os.path.exists(pidfile):
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("gunicorn did not answer within 60 s")
PY
then
    echo "run.sh: startup failed; last log lines:" >&2
    tail -n 30 "$LOG" >&2
    kill "$LAUNCHED" 2>/dev/null || true
    exit 1
fi

PID=$(cat "$PIDFILE")
echo "run.sh: ready: http://127.0.0.1:$PORT/backends/kannel-fake-smsc/?id=%2B15551234&text=hello (gunicorn master PID $PID)" >&2
echo "$PID"
