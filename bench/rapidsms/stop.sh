#!/usr/bin/env bash
# stop.sh PID — stop a gunicorn master started by run.sh: SIGTERM (graceful:
# workers finish their request, the fake Kannel responder is terminated by the
# on_exit hook), wait up to 30 s, then SIGKILL. Plain `kill PID` is equivalent
# minus the wait.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 PID" >&2
    exit 2
fi
PID=$1
if ! kill -0 "$PID" 2>/dev/null; then
    echo "stop.sh: no process $PID" >&2
    exit 0
fi
case "$(tr '\0' ' ' </proc/"$PID"/cmdline 2>/dev/null)" in
    *gunicorn*benchproj.wsgi*) ;;
    *) echo "stop.sh: $PID is not a run.sh gunicorn master; refusing" >&2; exit 1 ;;
esac
kill -TERM "$PID"
for _ in $(seq 1 300); do
    kill -0 "$PID" 2>/dev/null || { echo "stop.sh: $PID stopped" >&2; exit 0; }
    sleep 0.1
done
echo "stop.sh: $PID still running after 30 s; SIGKILL" >&2
kill -KILL "$PID" 2>/dev/null || true
