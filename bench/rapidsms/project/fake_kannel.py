"""A stand-in for Kannel's sendsms interface on loopback.

RapidSMS's KannelBackend sends replies with a blocking requests.get() to
sendsms_url (no timeout). This answers like Kannel's smsbox does
(202 "0: Accepted for delivery") so that a reply (e.g. "pong" to "ping")
never blocks a gunicorn worker on a missing provider.

Started by gunicorn.conf.py in the gunicorn master; prints "PORT <n>" on its
first stdout line. Exits when its parent (the gunicorn master) goes away, and
is terminated by gunicorn's on_exit hook on a normal stop.
"""

import http.server
import os
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def do_GET(self):
        if not self.path.startswith("/cgi-bin/sendsms"):
            self.send_error(404)
            return
        Handler.count += 1
        body = b"0: Accepted for delivery"
        self.send_response(202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # quiet
        pass


def watch_parent(parent):
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
