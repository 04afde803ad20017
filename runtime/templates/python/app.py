"""{{name}}: an smsgw backend. Inbound: `GET ?from=...&text=...`; outbound: a
JSON POST per message to the configured `url`. Change both to match your
provider, then pin the behaviour in `testdata/`.

componentize-py maps the WIT world `backend`: the `Adapter` class implements
the exported interface `adapter`; errors are raised as `Err(...)`.
"""

import json
from urllib.parse import parse_qsl

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import http_client
from wit_world.imports.types import (
    HttpResponse,
    Incoming,
    IncomingMessage,
    ParseError_InvalidRequest,
    ParseError_MethodNotAllowed,
    SendError_Config,
    SendError_Permanent,
    SendError_Retryable,
    SentIdentity,
)


def param(query, name):
    """The first value of a query parameter, trimmed; a 400 naming it when missing."""
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name and value.strip():
            return value.strip()
    raise Err(ParseError_InvalidRequest("missing parameter '%s'" % name))


class Adapter(exports.Adapter):
    def parse_incoming(self, ctx, request):
        if request.method != "GET":
            raise Err(ParseError_MethodNotAllowed("use GET, not %s" % request.method))
        message = IncomingMessage(param(request.query, "from"), param(request.query, "text"), None, None, [])
        ok = HttpResponse(200, [("content-type", "text/plain")], b"OK")
        return Incoming([message], [], ok)

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
