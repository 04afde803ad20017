"""{{name}}: an smsgw backend. Inbound: `GET ?from=...&text=...`; outbound: a
JSON POST per message to the configured `url`. Change both to match your
provider, then pin the behaviour in `testdata/`.

componentize-py maps the WIT world `backend`: the `Adapter` class implements
the exported interface `adapter`; errors are raised as `Err(...)`. print()
writes to the gateway's log.
"""

import functools
import json
import sys
from urllib.parse import parse_qsl

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import http_client, log
from wit_world.imports.types import (
    HttpResponse,
    Incoming,
    IncomingMessage,
    ParseError_InvalidRequest,
    ParseError_MethodNotAllowed,
    ParseError_Other,
    SendError_Config,
    SendError_Other,
    SendError_Permanent,
    SendError_Retryable,
    SentIdentity,
)


# The sandbox has no stdout/stderr (writing there would trap), so both go to the gateway's log.
class LogWriter:
    def __init__(self, level):
        self.level, self.pending = level, ""

    def write(self, text):
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            log.log(self.level, line)
        return len(text)

    def flush(self):
        pass


sys.stdout, sys.stderr = LogWriter(log.Level.INFO), LogWriter(log.Level.ERROR)


def reports_exceptions(other):
    """Turns an unexpected exception (a bug) into the error `other(...)` with its
    traceback, and logs it: Python cannot print it here (no stderr, no source files)."""

    def decorate(function):
        @functools.wraps(function)
        def call(*args):
            try:
                return function(*args)
            except Err:
                raise
            except Exception as e:
                lines = ["%s: %s" % (type(e).__name__, e), "Traceback (most recent call last):"]
                tb = e.__traceback__.tb_next  # from the frame below this wrapper
                while tb is not None:
                    code = tb.tb_frame.f_code
                    lines.append('  File "%s", line %d, in %s' % (code.co_filename, tb.tb_lineno, code.co_name))
                    tb = tb.tb_next
                text = "\n".join(lines)[:4000]
                log.log(log.Level.ERROR, text)
                raise Err(other(text))

        return call

    return decorate


def param(query, name):
    """The first value of a query parameter, trimmed; a 400 naming it when missing."""
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name and value.strip():
            return value.strip()
    raise Err(ParseError_InvalidRequest("missing parameter '%s'" % name))


class Adapter(exports.Adapter):
    @reports_exceptions(ParseError_Other)
    def parse_incoming(self, ctx, request):
        if request.method != "GET":
            raise Err(ParseError_MethodNotAllowed("use GET, not %s" % request.method))
        message = IncomingMessage(param(request.query, "from"), param(request.query, "text"), None, None, [])
        ok = HttpResponse(200, [("content-type", "text/plain")], b"OK")
        return Incoming([message], [], ok)

    @reports_exceptions(SendError_Other)
    def send(self, ctx, message):
        config = json.loads(ctx.config or "{}")
        url = config.get("url")
        if not isinstance(url, str):
            raise Err(SendError_Config("config key 'url' is required"))
        body = json.dumps({"to": message.identities, "text": message.text, "id": message.id}).encode("utf-8")
        request = http_client.Request("POST", url, [("content-type", "application/json")], body, None)
        try:
            response = http_client.fetch(request)
        except Err as e:
            raise Err(SendError_Retryable("provider unreachable: %r" % (e.value,)))
        if 200 <= response.status < 300:
            return [SentIdentity(identity, None) for identity in message.identities]
        if response.status >= 500:
            raise Err(SendError_Retryable("provider answered %d" % response.status))
        raise Err(SendError_Permanent("provider answered %d" % response.status))
