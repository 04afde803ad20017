#!/usr/bin/env bash
# End-to-end demo of a real Kannel 1.4.5 on loopback, driven by fakesmsc.
#
#   usage: tests/kannel/run-demo.sh [PORT_BASE]      (default 24000)
#
# Uses TCP ports PORT_BASE .. PORT_BASE+4 on 127.0.0.1:
#   +0 bearerbox admin   +1 bearerbox<->smsbox   +2 fake SMSC
#   +3 smsbox sendsms    +4 python stand-in gateway (get-url and dlr-url target)
# Steps checked (each must be observed within $STEP_TIMEOUT seconds, else exit 1):
#   1. plain ASCII MO  fakesmsc -> bearerbox -> smsbox -> get-url (stand-in)
#   2. ASCII MT        curl sendsms -> smsbox -> bearerbox -> fakesmsc
#   3. UCS-2 MO (fakesmsc "ucs2") -> get-url, and UCS-2 MT (sendsms coding=2) -> fakesmsc
#   4. DLR             sendsms dlr-mask=31 -> dlr-url gets type 8 and type 1
# All processes are started by this script and stopped by PID on exit.
# Set KEEP_TMP=1 to keep the temp dir (logs) after a successful run; it is always
# kept (and its path printed) on failure.
set -euo pipefail

PORT_BASE=${1:-24000}
STEP_TIMEOUT=${STEP_TIMEOUT:-15}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE="$HERE/kannel.conf.template"

BEARERBOX=/usr/sbin/bearerbox
SMSBOX=/usr/sbin/smsbox
FAKESMSC=/usr/lib/kannel/test/fakesmsc

ADMIN_PORT=$PORT_BASE
SMSBOX_PORT=$((PORT_BASE + 1))
FAKE_PORT=$((PORT_BASE + 2))
SENDSMS_PORT=$((PORT_BASE + 3))
GW_PORT=$((PORT_BASE + 4))
ADMIN_PASSWORD=demo-admin
STATUS_PASSWORD=demo-status
SENDSMS_USER=demo
SENDSMS_PASSWORD=demo-secret
GATEWAY_URL="http://127.0.0.1:${GW_PORT}/backends/kannel/?id=%p&text=%a&charset=%C&coding=%c"

log() { printf '[demo %s] %s\n' "$(date +%T.%3N)" "$*"; }
die() { printf '[demo %s] FAIL: %s\n' "$(date +%T.%3N)" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- packages
ensure_packages() {
    local missing=()
    [ -x "$BEARERBOX" ] && [ -x "$SMSBOX" ] || missing+=(kannel)
    [ -x "$FAKESMSC" ] || missing+=(kannel-extras)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y "${missing[@]}"; then
        apt-get update
        apt-get install -y "${missing[@]}"
    fi
}

# The Debian package ships /etc/init.d/kannel (bearerbox + wapbox on 13000/13002, as
# user kannel, pid files in /var/run/kannel). Where policy-rc.d allows it, apt starts it
# on install. It does not use our ports, but stop it so that nothing else is around.
stop_debian_service() {
    local pf pid
    for pf in /var/run/kannel/kannel_bearerbox.pid /var/run/kannel/kannel_wapbox.pid \
              /var/run/kannel/kannel_smsbox.pid; do
        [ -r "$pf" ] || continue
        pid=$(cat "$pf" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            log "Debian kannel service is running (pid file $pf); stopping it"
            /etc/init.d/kannel stop || true
            command -v update-rc.d >/dev/null && update-rc.d kannel disable >/dev/null 2>&1 || true
            return 0
        fi
    done
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for DESCRIPTION COMMAND... : retry COMMAND every 0.1 s until it succeeds
wait_for() {
    local desc=$1; shift
    local deadline=$((SECONDS + STEP_TIMEOUT))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || die "timeout (${STEP_TIMEOUT}s) waiting for: $desc"
        sleep 0.1
    done
}

status_txt() { curl -s --max-time 2 "http://127.0.0.1:${ADMIN_PORT}/status.txt?password=${STATUS_PASSWORD}" || true; }
bb_up()        { status_txt | grep -q '^Status: running'; }
smsbox_up()    { status_txt | grep -qE '^ +smsbox:'; }
fake_online()  { status_txt | grep -qE 'FAKE:[0-9]+ \(online'; }
gw_up()        { port_busy "$GW_PORT"; }
gw_has()       { grep -qF -- "$1" "$WORK/gw.log"; }
fs_has()       { grep -qF -- "$1" "$WORK/fakesmsc.out"; }

# Inject one MO line into fakesmsc (interactive mode reads stdin with fgets(256):
# one line at a time, < 255 bytes, and wait for its effect before sending the next).
mo() { printf '%s\n' "$1" >&"$FS_IN"; }

sendsms() { # extra query string (already url-encoded)
    curl -s --max-time 10 -o "$WORK/sendsms.body" -w '%{http_code}' \
        "http://127.0.0.1:${SENDSMS_PORT}/cgi-bin/sendsms?username=${SENDSMS_USER}&password=${SENDSMS_PASSWORD}&$1"
}

# ---------------------------------------------------------------- cleanup
PIDS_FS="" PID_SB="" PID_BB="" PID_GW=""
stop_pid() { # pid name grace_seconds
    local pid=$1 name=$2 grace=$3 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name ($pid) still alive after ${grace}s, SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    set +e
    # order: fakesmsc, smsbox, bearerbox (smsbox would try to reconnect if bearerbox
    # went first), then the stand-in gateway
    stop_pid "$PIDS_FS" fakesmsc 3
    stop_pid "$PID_SB" smsbox 10
    stop_pid "$PID_BB" bearerbox 10
    stop_pid "$PID_GW" gateway-stand-in 3
    if [ -n "${WORK:-}" ]; then
        if [ $rc -ne 0 ] || [ -n "${KEEP_TMP:-}" ]; then
            log "logs kept in $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    [ $rc -eq 0 ] && log "all processes stopped; OK" || log "all processes stopped; exit $rc"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup
ensure_packages
stop_debian_service
for p in "$ADMIN_PORT" "$SMSBOX_PORT" "$FAKE_PORT" "$SENDSMS_PORT" "$GW_PORT"; do
    port_busy "$p" && die "port 127.0.0.1:$p is already in use"
done

WORK=$(mktemp -d /tmp/kannel-demo.XXXXXX)
mkdir -p "$WORK/log" "$WORK/store"
: > "$WORK/gw.log"

# render the template (bash 5.2: quote the replacement so '&' is literal)
conf=$(<"$TEMPLATE")
for kv in "ADMIN_PORT=$ADMIN_PORT" "ADMIN_PASSWORD=$ADMIN_PASSWORD" \
          "STATUS_PASSWORD=$STATUS_PASSWORD" "SMSBOX_PORT=$SMSBOX_PORT" \
          "FAKE_PORT=$FAKE_PORT" "SENDSMS_PORT=$SENDSMS_PORT" \
          "SENDSMS_USER=$SENDSMS_USER" "SENDSMS_PASSWORD=$SENDSMS_PASSWORD" \
          "GATEWAY_URL=$GATEWAY_URL" "LOG_DIR=$WORK/log" "STORE_DIR=$WORK/store"; do
    conf=${conf//"@${kv%%=*}@"/"${kv#*=}"}
done
grep -v '^#' <<<"$conf" | grep -q '@[A-Z_]*@' && die "unrendered placeholder in config"
printf '%s\n' "$conf" > "$WORK/kannel.conf"

# stand-in gateway: logs each request's raw path+query, answers 200 with empty body
cat > "$WORK/gw.py" <<'EOF'
import sys, http.server
port, logf = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        with open(logf, "a") as f:
            f.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF

T0=$SECONDS
python3 "$WORK/gw.py" "$GW_PORT" "$WORK/gw.log" > "$WORK/gw.out" 2>&1 &
PID_GW=$!
wait_for "stand-in gateway on $GW_PORT" gw_up

# ---------------------------------------------------------------- start kannel
# -v 0 = debug level on stderr (needed nowhere; 1 = info would do); logs go to files too
"$BEARERBOX" -v 1 "$WORK/kannel.conf" > "$WORK/bearerbox.out" 2>&1 &
PID_BB=$!
log "bearerbox pid $PID_BB"
wait_for "bearerbox admin status" bb_up
log "bearerbox ready (status.txt says running)"

"$SMSBOX" -v 1 "$WORK/kannel.conf" > "$WORK/smsbox.out" 2>&1 &
PID_SB=$!
log "smsbox pid $PID_SB"
wait_for "smsbox connected to bearerbox" smsbox_up
log "smsbox ready (listed under Box connections)"

# fakesmsc in interactive mode: MO lines on stdin, MT lines printed as
# "DEBUG: Got message N: <from to type payload>" on stderr (needs the default debug level).
mkfifo "$WORK/fakesmsc.in"
exec {FS_IN}<>"$WORK/fakesmsc.in"   # read-write open: never blocks, keeps the fifo open
"$FAKESMSC" -H 127.0.0.1 -r "$FAKE_PORT" -i 0 < "$WORK/fakesmsc.in" > "$WORK/fakesmsc.out" 2>&1 &
PIDS_FS=$!
log "fakesmsc pid $PIDS_FS"
wait_for "fake SMSC online" fake_online
log "fake SMSC online; start-up took $((SECONDS - T0))s"

# ---------------------------------------------------------------- 1. plain MO
mo "4915550001 12345 text Hello from MO 1"
EXP='/backends/kannel/?id=4915550001&text=Hello+from+MO+1&charset=UTF-8&coding=0'
wait_for "plain MO at get-url" gw_has "$EXP"
log "1 MO plain  -> gateway got: $(grep -F -- "$EXP" "$WORK/gw.log")"

# ---------------------------------------------------------------- 2. ASCII MT
code=$(sendsms "from=12345&to=4915550001&text=Hello+MT+1")
[ "$code" = 202 ] || die "sendsms ASCII returned HTTP $code: $(cat "$WORK/sendsms.body")"
log "2 sendsms ASCII -> HTTP $code '$(cat "$WORK/sendsms.body")'"
EXP='<12345 4915550001 text Hello MT 1>'
wait_for "ASCII MT at fakesmsc" fs_has "$EXP"
log "2 MT ASCII  -> fakesmsc: $(grep -F -- "$EXP" "$WORK/fakesmsc.out" | sed 's/^.*DEBUG: //')"

# ---------------------------------------------------------------- 3. UCS-2 both ways
# "héllo ✓ 😀" as UTF-16BE, %-encoded: fakesmsc's MO type is "ucs2" (not "ucs-2")
UCS2_MO='%00h%00%E9%00l%00l%00o%00%20%27%13%00%20%D8%3D%DE%00'
mo "4915550001 12345 ucs2 $UCS2_MO"
EXP="/backends/kannel/?id=4915550001&text=%00h%00%E9%00l%00l%00o%00+'%13%00+%D8%3D%DE%00&charset=UTF-16BE&coding=2"
wait_for "UCS-2 MO at get-url" gw_has "$EXP"
log "3a MO UCS-2 -> gateway got: $(grep -F -- "$EXP" "$WORK/gw.log")"

UTF8_PCT='h%C3%A9llo%20%E2%9C%93%20%F0%9F%98%80'   # "héllo ✓ 😀" UTF-8
code=$(sendsms "from=12345&to=4915550001&coding=2&charset=UTF-8&text=$UTF8_PCT")
[ "$code" = 202 ] || die "sendsms UCS-2 returned HTTP $code: $(cat "$WORK/sendsms.body")"
EXP="<12345 4915550001 ucs-2 %00h%00%E9%00l%00l%00o%00+'%13%00+%D8%3D%DE%00>"
wait_for "UCS-2 MT at fakesmsc" fs_has "$EXP"
log "3b MT UCS-2 -> fakesmsc: $(grep -F -- "$EXP" "$WORK/fakesmsc.out" | sed 's/^.*DEBUG: //')"

# ---------------------------------------------------------------- 4. DLR
DLR_URL="http://127.0.0.1:${GW_PORT}/dlr?type=%d&smsc=%i&id=%I&ts=%t&to=%p&from=%P&reply=%A&ref=demo-42"
DLR_URL_ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$DLR_URL")
code=$(sendsms "from=12345&to=4915550001&text=DLR+test&dlr-mask=31&dlr-url=$DLR_URL_ENC")
[ "$code" = 202 ] || die "sendsms DLR returned HTTP $code: $(cat "$WORK/sendsms.body")"
wait_for "DLR MT at fakesmsc" fs_has '<12345 4915550001 text DLR test>'
dlr8() { grep -qE '^/dlr\?type=8&smsc=FAKE&id=[0-9a-f-]{36}&ts=[0-9-]+\+[0-9:]+&to=4915550001&from=12345&reply=ACK%2F&ref=demo-42$' "$WORK/gw.log"; }
dlr1() { grep -qE '^/dlr\?type=1&smsc=FAKE&id=[0-9a-f-]{36}&ts=[0-9-]+\+[0-9:]+&to=4915550001&from=12345&reply=&ref=demo-42$' "$WORK/gw.log"; }
wait_for "DLR type 8 (SMSC ack)" dlr8
wait_for "DLR type 1 (delivered)" dlr1
grep '^/dlr' "$WORK/gw.log" | while read -r l; do log "4 DLR       -> gateway got: $l"; done

log "all steps observed in $((SECONDS - T0))s"
echo "---- raw get-url/dlr-url requests seen by the stand-in:"
cat "$WORK/gw.log"
echo "---- MT lines printed by fakesmsc:"
grep -a 'Got message' "$WORK/fakesmsc.out" | sed 's/^.*DEBUG: //'
echo "----"
if grep -aE ' (ERROR|PANIC): ' "$WORK/log/bearerbox.log" "$WORK/log/smsbox.log" >/dev/null; then
    log "note: ERROR/PANIC lines in Kannel logs:"
    grep -aE ' (ERROR|PANIC): ' "$WORK/log/bearerbox.log" "$WORK/log/smsbox.log" | head -20
fi
exit 0
