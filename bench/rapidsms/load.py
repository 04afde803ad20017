#!/usr/bin/env python3
"""Bounded loopback load generator for the Kannel MO endpoint (stdlib only).

GET {url}?id=<sender>&text=<text> from N threads, one new TCP connection per
request (gunicorn's sync workers close after every response anyway), until
--requests are sent or --duration seconds pass, whichever comes first.
Refuses non-loopback targets. Prints requests/s and latency percentiles.

  python3 load.py --url http://127.0.0.1:18081/backends/kannel-fake-smsc/ \
      --concurrency 8 --duration 10 --requests 5000
"""

import argparse
import http.client
import ipaddress
import json
import socket
import sys
import threading
import time
import urllib.parse

MAX_DURATION = 120.0
MAX_REQUESTS = 200_000


def server_cpu(pids):
    """utime+stime (seconds) of the given PIDs and their direct children, from /proc.
    Exited children are not counted; gunicorn workers live for the whole run."""
    import os
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid in pids or ppid in pids:
            total += int(fields[11]) + int(fields[12])
    return total / tck


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0, help=f"seconds (max {MAX_DURATION:g})")
    ap.add_argument("--requests", type=int, default=5000, help=f"max requests (max {MAX_REQUESTS})")
    ap.add_argument("--text", default="hello")
    ap.add_argument("--senders", type=int, default=1,
                    help="distinct sender ids (+1555000000k); 1 = always +15550000000")
    ap.add_argument("--warmup", type=int, default=20, help="unmeasured requests first")
    ap.add_argument("--server-pid", type=int, action="append", default=[],
                    help="also report CPU seconds used by this PID and its children (repeatable)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port or 80
    addr = ipaddress.ip_address(socket.gethostbyname(host))
    if not addr.is_loopback:
        sys.exit(f"refusing non-loopback target {addr}")
    if not (0 < a.duration <= MAX_DURATION and 0 < a.requests <= MAX_REQUESTS and 0 < a.concurrency <= 256):
        sys.exit("duration/requests/concurrency out of bounds")
    path = u.path or "/"
    text = urllib.parse.quote(a.text)

    def target(i):
        sender = urllib.parse.quote(f"+1555{i % a.senders:07d}")
        return f"{path}?id={sender}&text={text}"

    def one(i):
        t0 = time.perf_counter()
        c = http.client.HTTPConnection(host, port, timeout=30)
        try:
            c.request("GET", target(i), headers={"Host": f"{host}:{port}"})
            r = c.getresponse()
            r.read()
            status = r.status
        except OSError as e:
            status = type(e).__name__
        finally:
            c.close()
        return status, time.perf_counter() - t0

    for i in range(a.warmup):
        one(i)

    cpu0 = server_cpu(a.server_pid)
    lock = threading.Lock()
    issued = 0
    lat, statuses = [], {}
    start = time.perf_counter()
    deadline = start + a.duration

    def worker():
        nonlocal issued
        mine = []
        mystat = {}
        while True:
            with lock:
                if issued >= a.requests or time.perf_counter() >= deadline:
                    break
                issued += 1
                i = issued + a.warmup
            st, dt = one(i)
            mystat[st] = mystat.get(st, 0) + 1
            mine.append(dt)
        with lock:
            lat.extend(mine)
            for k, v in mystat.items():
                statuses[k] = statuses.get(k, 0) + v

    ts = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - start
    cpu1 = server_cpu(a.server_pid)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")

    res = {
        "url": a.url, "concurrency": a.concurrency, "requests": len(lat),
        "elapsed_s": round(elapsed, 3), "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(pct(50), 2), "p90_ms": round(pct(90), 2),
        "p99_ms": round(pct(99), 2), "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
    }
    if a.server_pid:
        used = cpu1 - cpu0
        res["server_cpu_s"] = round(used, 2)
        res["server_cpu_ms_per_req"] = round(used / len(lat) * 1000, 2) if lat else None
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{res['requests']} requests in {res['elapsed_s']} s, concurrency {a.concurrency}: "
              f"{res['rps']} req/s; latency p50 {res['p50_ms']} ms, p90 {res['p90_ms']} ms, "
              f"p99 {res['p99_ms']} ms, max {res['max_ms']} ms; statuses {res['statuses']}"
              + (f"; server CPU {res['server_cpu_s']} s = {res['server_cpu_ms_per_req']} ms/req"
                 if a.server_pid else ""))
    ok = statuses.get(200, 0)
    sys.exit(0 if ok == len(lat) else 1)


if __name__ == "__main__":
    main()
