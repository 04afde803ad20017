"""The generic HTTP backend in Python: the same behaviour as backends/http (Rust).

Inbound: `GET ?identity=..&text=..` or a POSTed form, with configurable
parameter names. Outbound: one request per identity (or one for all when
`identity_separator` is set) to `sendsms_url`, as a query, form or JSON.

componentize-py maps the WIT world `backend` (package smsgw:backend@0.1.0):
this module's `Adapter` class implements the exported interface `adapter`;
a `result` error is raised as `Err(...)`, both by us and by `http_client.fetch`.
"""

import functools
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import http_client, log
from wit_world.imports.types import (
    FailedIdentity,
    Incoming,
    IncomingMessage,
    ParseError_Config,
    ParseError_InvalidRequest,
    ParseError_MethodNotAllowed,
    ParseError_Other,
    PartialFailure,
    SendError_Config,
    SendError_FailedIdentities,
    SendError_Other,
    SendError_Permanent,
    SendError_Retryable,
    SendError_Throttled,
    SentIdentity,
    Throttled,
)

from smsgw_sdk import (
    Config,
    ConfigError,
    InvalidParam,
    Params,
    ascii_upper,
    describe_exception,
    encode_pairs,
    encode_pairs_with_secret_refs,
    lossy_utf8,
    object_body,
    parse_u64,
    trim,
)

U64_MAX = 2**64 - 1


class Settings:
    """The options of this backend, read from the operator's table."""

    def __init__(self, config_json):
        c = Config.parse(config_json)
        identity_name = c.string_or("identity_name", "identity")
        text_name = c.string_or("text_name", "text")
        configured_method = c.string("sendsms_method")
        method = "GET" if configured_method is None else ascii_upper(configured_method)
        if method not in ("GET", "POST"):
            raise ConfigError("config key 'sendsms_method' must be GET or POST, not '%s'" % method)
        encoding = c.string_or("sendsms_encoding", "query" if method == "GET" else "form")
        if encoding not in ("query", "form", "json"):
            raise ConfigError(
                "config key 'sendsms_encoding' must be query, form or json, not '%s'" % encoding
            )
        # Same order of reading as the Rust backend, so the same key is blamed first.
        self.out_identity_name = c.string_or("outgoing_identity_name", identity_name)
        self.out_text_name = c.string_or("outgoing_text_name", text_name)
        self.out_id_name = c.string("outgoing_id_name")
        self.identity_name = identity_name
        self.text_name = text_name
        self.sendsms_url = c.string("sendsms_url")
        self.method = method
        self.encoding = encoding
        self.params = c.string_map("sendsms_params")
        self.identity_separator = c.string("identity_separator")

    def request(self, url, msg, to):
        """The provider request sending `msg` to `to`."""
        own = Params()
        own.push(self.out_identity_name, to)
        own.push(self.out_text_name, msg.text)
        if self.out_id_name is not None:
            own.push(self.out_id_name, msg.id)
        # Only the operator's parameters may carry {{secret:NAME}} references;
        # the message's own values are fully encoded so a reference typed into
        # an SMS is never filled in.
        configured = encode_pairs_with_secret_refs(self.params)
        encoded = encode_pairs(own.pairs)
        if configured:
            encoded = configured + "&" + encoded
        if self.encoding == "query":
            separator = "&" if "?" in url else "?"
            return http_client.Request(self.method, url + separator + encoded, [], b"", None)
        if self.encoding == "form":
            headers = [("content-type", "application/x-www-form-urlencoded")]
            return http_client.Request(self.method, url, headers, encoded.encode("utf-8"), None)
        body = object_body(self.params, own.pairs)
        headers = [("content-type", "application/json")]
        return http_client.Request(self.method, url, headers, body.encode("utf-8"), None)


def describe_http_error(e):
    """A readable one-line description of a host HTTP error."""
    if isinstance(e, http_client.Error_Denied):
        return "denied by the gateway: %s" % e.value
    if isinstance(e, http_client.Error_Timeout):
        return "timed out"
    if isinstance(e, http_client.Error_TooLarge):
        return "response larger than %d bytes" % e.value
    if isinstance(e, http_client.Error_InvalidRequest):
        return "invalid request: %s" % e.value
    if isinstance(e, http_client.Error_Transport):
        return "transport error: %s" % e.value
    if isinstance(e, http_client.Error_LimitExceeded):
        return "limit exceeded: %s" % e.value
    return str(e.value)


def retry_after_ms(resp):
    for name, value in resp.headers:
        if name == "retry-after":
            secs = parse_u64(trim(value))
            return None if secs is None else min(secs * 1000, U64_MAX)
    return None


def send_classified(identities, req):
    """Sends `req`; returns None when the provider took it, else the send-error
    that its reply (or the host's HTTP error) means for `identities`."""
    who = ", ".join(identities)
    try:
        resp = http_client.fetch(req)
    except Err as e:
        # Denials and malformed requests will not fix themselves; the rest may.
        if isinstance(e.value, (http_client.Error_Denied, http_client.Error_InvalidRequest)):
            return SendError_Config(describe_http_error(e.value))
        return SendError_Retryable(describe_http_error(e.value))
    if 200 <= resp.status < 300:
        return None
    if resp.status == 429:
        return SendError_Throttled(Throttled("provider throttled %s" % who, retry_after_ms(resp)))
    text = trim(lossy_utf8(resp.body))
    if resp.status >= 500:
        return SendError_Retryable("provider answered %d for %s: %s" % (resp.status, who, text))
    return SendError_Permanent("provider refused %s with %d: %s" % (who, resp.status, text))


def describe_send_error(e):
    """(reason, retryable) of a send-error, for one failed identity."""
    if isinstance(e, (SendError_Permanent, SendError_Config)):
        return e.value, False
    if isinstance(e, (SendError_Retryable, SendError_Other)):
        return e.value, True
    if isinstance(e, SendError_Throttled):
        return e.value.reason, True
    return "partial failure", True


# The sandbox has no stdout/stderr (writing there would trap), so both go to the gateway's log.
class _LogWriter:
    def __init__(self, level):
        self.level, self.pending = level, ""

    def write(self, text):
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            log.log(self.level, line)
        return len(text)

    def flush(self):
        pass


sys.stdout, sys.stderr = _LogWriter(log.Level.INFO), _LogWriter(log.Level.ERROR)


def _reports_exceptions(other):
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
                text = describe_exception(e, skip_frames=1)  # not this wrapper's frame
                log.log(log.Level.ERROR, text)
                raise Err(other(text))

        return call

    return decorate


class Adapter(exports.Adapter):
    @_reports_exceptions(ParseError_Other)
    def parse_incoming(self, ctx, request):
        try:
            settings = Settings(ctx.config)
        except ConfigError as e:
            raise Err(ParseError_Config(str(e)))
        if request.method == "GET":
            params = Params.from_query(request)
        elif request.method == "POST":
            params = Params.from_form(request)
        else:
            raise Err(ParseError_MethodNotAllowed(
                "method %s not allowed; use GET or POST" % request.method))
        try:
            identity = params.required(settings.identity_name)
            text = params.required(settings.text_name)
        except InvalidParam as e:
            raise Err(ParseError_InvalidRequest(str(e)))
        return Incoming([IncomingMessage(identity, text, None, None, [])], [], None)

    @_reports_exceptions(SendError_Other)
    def send(self, ctx, message):
        try:
            settings = Settings(ctx.config)
        except ConfigError as e:
            raise Err(SendError_Config(str(e)))
        url = settings.sendsms_url
        if url is None:
            raise Err(SendError_Config("config key 'sendsms_url' is required to send"))

        if settings.identity_separator is not None:
            to = settings.identity_separator.join(message.identities)
            error = send_classified(message.identities, settings.request(url, message, to))
            if error is not None:
                raise Err(error)
            return [SentIdentity(identity, None) for identity in message.identities]

        sent, failed, last_error = [], [], None
        for identity in message.identities:
            error = send_classified([identity], settings.request(url, message, identity))
            if error is None:
                sent.append(SentIdentity(identity, None))
            else:
                reason, retryable = describe_send_error(error)
                failed.append(FailedIdentity(identity, reason, retryable))
                last_error = error
        if last_error is None:
            return sent
        # Everything failed the same way: report that error as it is.
        if not sent and len(message.identities) == 1:
            raise Err(last_error)
        raise Err(SendError_FailedIdentities(PartialFailure(sent, failed)))
