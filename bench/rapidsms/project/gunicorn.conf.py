"""gunicorn hooks for the RapidSMS benchmark (bind/workers come from run.sh).

Unless RAPIDSMS_BENCH_SENDSMS_URL is already set, the master starts
fake_kannel.py on an ephemeral loopback port before forking workers and
exports its URL, so Django's INSTALLED_BACKENDS sendsms_url (read when each
worker imports settings) points at it. Stopping gunicorn (SIGTERM/SIGINT/
SIGQUIT to the master) stops it too; one PID controls everything.
"""

import os
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_fake = None

worker_class = "sync"


def on_starting(server):
    global _fake
    if os.environ.get("RAPIDSMS_BENCH_SENDSMS_URL"):
        return
    _fake = subprocess.Popen(
        [sys.executable, os.path.join(_HERE, "fake_kannel.py")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    line = _fake.stdout.readline().decode().split()
    _fake.stdout.close()
    if len(line) != 2 or line[0] != "PORT":
        raise RuntimeError(f"fake_kannel.py did not report its port: {line!r}")
    url = f"http://127.0.0.1:{line[1]}/cgi-bin/sendsms"
    os.environ["RAPIDSMS_BENCH_SENDSMS_URL"] = url
    server.log.info("fake Kannel sendsms (pid %s) at %s", _fake.pid, url)


def on_exit(server):
    if _fake is not None and _fake.poll() is None:
        _fake.terminate()
        try:
            _fake.wait(5)
        except subprocess.TimeoutExpired:
            _fake.kill()
