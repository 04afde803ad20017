"""Pure-Python helpers mirroring the Rust guest SDK (guest-sdk/src).

Nothing here touches the component bindings, so it can be unit-tested with
any CPython (see ../tests/). Each helper matches its Rust counterpart byte for
byte where the fixtures or the host can tell the difference:

* form decoding: WHATWG `application/x-www-form-urlencoded` (`form_urlencoded::parse`)
* form encoding: `form_urlencoded::byte_serialize` (only `*-._` and ASCII
  alphanumerics stay as they are; a space becomes `+`)
* `{{secret:NAME}}` references kept unencoded only in operator values
  (`Params::encode_with_secret_refs`)
* JSON bodies in which untrusted strings cannot carry a reference (`json::object_body`)
* the typed configuration getters (`Config`), with the same error texts
"""

import json

# Rust's `char::is_whitespace` (Unicode White_Space); str.strip() would also
# strip U+001C..U+001F, which Rust keeps.
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def trim(text):
    """Rust's `str::trim`."""
    return text.strip(_WHITESPACE)


def ascii_lower(text):
    """Rust's `str::to_ascii_lowercase` (str.lower() also maps e.g. U+212A to 'k')."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def ascii_upper(text):
    """Rust's `str::to_ascii_uppercase`."""
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def lossy_utf8(data):
    """Rust's `String::from_utf8_lossy`."""
    return bytes(data).decode("utf-8", errors="replace")


# --- application/x-www-form-urlencoded ------------------------------------------

# Every `XX` of a `%XX` escape to its byte, built at import (so into the
# component's snapshot): decoding looks up each escape instead of stepping
# through every byte in Python (12 µs of a call with an 80-byte query).
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_ESCAPES = {bytes((a, b)): bytes((int(bytes((a, b)), 16),)) for a in _HEX_DIGITS for b in _HEX_DIGITS}


def _percent_decode(component):
    """`+` to a space, then `%XX` to the byte XX; a stray `%` stays as it is."""
    data = component.replace(b"+", b" ")
    if b"%" not in data:
        return data
    pieces = data.split(b"%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        byte = _ESCAPES.get(piece[:2])
        if byte is None:
            out.append(b"%")
            out.append(piece)
        else:
            out.append(byte)
            out.append(piece[2:])
    return b"".join(out)


def parse_form(data):
    """Decoded (name, value) pairs of urlencoded bytes (or text), in order."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    pairs = []
    for part in bytes(data).split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((lossy_utf8(_percent_decode(name)), lossy_utf8(_percent_decode(value))))
    return pairs


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._")


def encode_component(text):
    """`form_urlencoded::byte_serialize` of one name or value."""
    out = []
    for byte in text.encode("utf-8"):
        if byte in _UNRESERVED:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append("%%%02X" % byte)
    return "".join(out)


def encode_pairs(pairs):
    """A query string or form body of `pairs`, every byte that needs it encoded."""
    return "&".join(encode_component(n) + "=" + encode_component(v) for n, v in pairs)


_OPEN = "{{secret:"


def _split_secret_ref(text):
    """The first `{{secret:NAME}}` in `text` as (before, reference, after), or None.

    The name must be non-empty and free of braces, so nothing else passes
    unencoded. A malformed first reference ends the search, as in Rust.
    """
    start = text.find(_OPEN)
    if start < 0:
        return None
    name_start = start + len(_OPEN)
    name_len = text.find("}}", name_start)
    if name_len < 0:
        return None
    name = text[name_start:name_len]
    if not name or "{" in name or "}" in name:
        return None
    end = name_len + 2
    return text[:start], text[start:end], text[end:]


def _encode_keeping_refs(value):
    out = []
    rest = value
    while True:
        split = _split_secret_ref(rest)
        if split is None:
            break
        before, reference, rest = split
        out.append(encode_component(before))
        out.append(reference)
    out.append(encode_component(rest))
    return "".join(out)


def encode_pairs_with_secret_refs(pairs):
    """Like encode_pairs, but well-formed `{{secret:NAME}}` references in values
    stay as they are for the host to fill in. Only for the operator's own
    configuration: a reference in a message would let its author read the secret."""
    return "&".join(encode_component(n) + "=" + _encode_keeping_refs(v) for n, v in pairs)


class Params:
    """Decoded parameters; the first occurrence of a name wins, as in RapidSMS."""

    def __init__(self, pairs=None):
        self.pairs = list(pairs or [])

    @classmethod
    def from_query(cls, req):
        return cls(parse_form(req.query))

    @classmethod
    def from_form(cls, req):
        """The form body; empty when the content type says it is not a form."""
        content_type = header(req.headers, "content-type")
        if content_type is None or ascii_lower(content_type).startswith("application/x-www-form-urlencoded"):
            return cls(parse_form(req.body))
        return cls()

    def get(self, name):
        for n, v in self.pairs:
            if n == name:
                return v
        return None

    def required(self, name):
        """The first value of `name`, trimmed; raises InvalidParam naming it."""
        value = self.get(name)
        if value is None:
            raise InvalidParam("missing parameter '%s'" % name)
        value = trim(value)
        if not value:
            raise InvalidParam("parameter '%s' is empty" % name)
        return value

    def push(self, name, value):
        self.pairs.append((name, value))


class InvalidParam(Exception):
    """A missing or empty parameter; the message is the reason for the 400."""


def header(headers, name):
    """The first value of header `name` (lower-case), or None."""
    for n, v in headers:
        if n == name:
            return v
    return None


# --- JSON ------------------------------------------------------------------------

def _json_string(text):
    # Same escaping as serde_json: `"`, `\`, and control characters only.
    return json.dumps(text, ensure_ascii=False)


def _json_string_untrusted(text):
    # `{` never occurs in an escape, so this only rewrites `{` inside the string.
    return _json_string(text).replace("{", "\\u007b")


def object_body(trusted, untrusted):
    """A JSON object whose `trusted` members (the operator's) keep their
    `{{secret:NAME}}` references and whose `untrusted` members (the message's)
    cannot carry any; a name in both takes the untrusted value.

    Both are lists of (name, string) pairs. As serde_json's default Map is a
    BTreeMap, members come out sorted by name and the last of a repeated name wins.
    """
    trusted, untrusted = dict(trusted), dict(untrusted)
    members = [
        _json_string(name) + ":" + _json_string(value)
        for name, value in sorted(trusted.items())
        if name not in untrusted
    ]
    members += [
        _json_string_untrusted(name) + ":" + _json_string_untrusted(value)
        for name, value in sorted(untrusted.items())
    ]
    return "{" + ",".join(members) + "}"


# --- configuration ----------------------------------------------------------------

class ConfigError(Exception):
    """The operator's configuration is unusable; the message names the key."""


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _parse_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range: %s" % text)
    return value


def _parse_int(text):
    """A JSON integer as serde_json reads it: an i64 or u64, else an f64
    (and `-0` is the float -0.0)."""
    value = int(text)
    if -(2**63) <= value < 2**64 and not (value == 0 and text.startswith("-")):
        return value
    return _parse_float(text)


def _float_text(value):
    """An f64 as serde_json 1.0.15x prints it (zmij): the shortest round-trip
    digits, fixed notation for decimal exponents -5..=15 (always with a
    fraction), else `d.ddde+N` / `de-N` without zero padding. Python's repr
    has the same digits but pads the exponent (`1e-07`) and switches to
    exponents one decade earlier (`1e-05` where serde_json writes `0.00001`)."""
    sign = "-" if str(value).startswith("-") else ""
    # repr gives the shortest round-trip digits: value = DIGITS * 10**scale.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    scale = (int(exponent) if exponent else 0) - len(fraction)
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return sign + "0.0"
    stripped = digits.rstrip("0")
    scale += len(digits) - len(stripped)
    digits = stripped
    dec_exp = len(digits) - 1 + scale  # exponent of the leading digit
    if -5 <= dec_exp <= 15:
        if dec_exp >= len(digits) - 1:
            return sign + digits + "0" * (dec_exp - len(digits) + 1) + ".0"
        if dec_exp >= 0:
            return sign + digits[: dec_exp + 1] + "." + digits[dec_exp + 1 :]
        return sign + "0." + "0" * (-dec_exp - 1) + digits
    body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return sign + body + ("e+%d" % dec_exp if dec_exp >= 0 else "e-%d" % -dec_exp)


def _number_text(value):
    """A JSON number as serde_json prints it."""
    if isinstance(value, int):
        return str(value)
    return _float_text(value)


def _scalar_text(value):
    """The text of a string, number or boolean; None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return _number_text(value)
    return None


class Config:
    """The backend's configuration table; getters name the key in their errors."""

    def __init__(self, table=None):
        self.table = table or {}

    @classmethod
    def parse(cls, text):
        if not trim(text):
            return cls()
        try:
            table = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int,
                               parse_float=_parse_float)
        except (ValueError, RecursionError) as e:
            raise ConfigError("configuration is not valid JSON: %s" % e) from None
        if not isinstance(table, dict):
            raise ConfigError("configuration is not a table")
        return cls(table)

    def string(self, key):
        """A string value (numbers and booleans as text), None when absent."""
        value = self.table.get(key)
        if value is None:
            return None
        text = _scalar_text(value)
        if text is None:
            raise ConfigError("config key '%s' must be a string" % key)
        return text

    def string_or(self, key, default):
        value = self.string(key)
        return default if value is None else value

    def string_map(self, key):
        """A table of strings, as (name, value) pairs in key order."""
        value = self.table.get(key)
        if value is None:
            return []
        if not isinstance(value, dict):
            raise ConfigError("config key '%s' must be a table" % key)
        pairs = []
        for name in sorted(value):
            text = _scalar_text(value[name])
            if text is None:
                raise ConfigError("config key '%s.%s' must be a string" % (key, name))
            pairs.append((name, text))
        return pairs


def parse_u64(text):
    """Rust's `str::parse::<u64>`: an optional `+`, then ASCII digits only."""
    digits = text[1:] if text.startswith("+") else text
    if not digits or any(not ("0" <= c <= "9") for c in digits):
        return None
    value = int(digits)
    return value if value < 2**64 else None


# --- unexpected exceptions -------------------------------------------------------


def describe_exception(exc, skip_frames=0, limit=4000):
    """`Type: message` and the traceback's frames, at most `limit` characters.
    Built by hand: the traceback module reads (stats) the source files, which
    traps inside the component."""
    lines = ["%s: %s" % (type(exc).__name__, exc), "Traceback (most recent call last):"]
    tb = exc.__traceback__
    for _ in range(skip_frames):
        tb = tb and tb.tb_next
    while tb is not None:
        code = tb.tb_frame.f_code
        lines.append('  File "%s", line %d, in %s' % (code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return "\n".join(lines)[:limit]
