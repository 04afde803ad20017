// Helpers of the generic HTTP backend, in plain ECMAScript (no Node or Web
// APIs: QuickJS inside the component has neither TextEncoder nor URLSearchParams
// we could rely on). Each mirrors a helper of the Rust guest SDK
// (guest-sdk/src/{params,json,config,http}.rs) byte for byte, so the JS and
// Rust backends behave the same on every input, not only on the fixtures.

// ---------------------------------------------------------------- UTF-8

/** UTF-8 bytes of a string (WIT strings are valid Unicode). */
export function utf8Encode(text) {
  const out = [];
  for (const ch of text) {
    let c = ch.codePointAt(0);
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate: cannot happen for WIT strings
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

/**
 * Bytes to a string, each maximal ill-formed subsequence replaced by one
 * U+FFFD: the same result as Rust's `String::from_utf8_lossy`.
 */
export function utf8DecodeLossy(bytes) {
  let out = "";
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i += 1;
      continue;
    }
    let need;
    let lo = 0x80;
    let hi = 0xbf;
    let cp;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      cp = b & 0x0f;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      cp = b & 0x07;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else {
      out += "\ufffd";
      i += 1;
      continue;
    }
    let j = i + 1;
    let ok = true;
    for (let k = 0; k < need; k++, j++) {
      const c = j < n ? bytes[j] : -1;
      const min = k === 0 ? lo : 0x80;
      const max = k === 0 ? hi : 0xbf;
      if (c < min || c > max) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (c & 0x3f);
    }
    if (ok) {
      out += String.fromCodePoint(cp);
      i = j;
    } else {
      out += "\ufffd";
      i = j; // skip the valid prefix of the sequence, not the offending byte
    }
  }
  return out;
}

/** `str::trim`: Rust's White_Space set (differs from JS's `trim`: U+0085 yes, U+FEFF no). */
const RUST_WS = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
export function rustTrim(text) {
  // Printable ASCII at both ends (the usual case) has nothing to trim, and
  // QuickJS runs the regular expression at every position otherwise.
  const first = text.charCodeAt(0);
  const last = text.charCodeAt(text.length - 1);
  if (first > 0x20 && first < 0x7f && last > 0x20 && last < 0x7f) return text;
  return text.replace(RUST_WS, "");
}

/** Byte-wise (UTF-8) order of two strings, as Rust's `String: Ord` (and serde_json's map). */
export function compareUtf8(a, b) {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done === y.done ? 0 : x.done ? -1 : 1;
    const cx = x.value.codePointAt(0);
    const cy = y.value.codePointAt(0);
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

// ---------------------------------------------------------------- forms

const HEX = "0123456789ABCDEF";

/** `form_urlencoded::byte_serialize`: `*-._` and alphanumerics stay, space is `+`. */
export function encodeComponent(text) {
  let out = "";
  for (const b of utf8Encode(text)) {
    if (
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      b === 0x2a ||
      b === 0x2d ||
      b === 0x2e ||
      b === 0x5f
    ) {
      out += String.fromCharCode(b);
    } else if (b === 0x20) {
      out += "+";
    } else {
      out += "%" + HEX[b >> 4] + HEX[b & 15];
    }
  }
  return out;
}

/** Pairs as an `application/x-www-form-urlencoded` string (`Params::encode`). */
export function encodePairs(pairs) {
  return pairs.map(([name, value]) => encodeComponent(name) + "=" + encodeComponent(value)).join("&");
}

function hexValue(b) {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  return -1;
}

/** Percent-decodes one form component (`+` is a space); a bad `%XX` stays as it is. */
function decodeComponent(bytes) {
  const out = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x2b) {
      out.push(0x20);
    } else if (b === 0x25 && i + 2 < bytes.length && hexValue(bytes[i + 1]) >= 0 && hexValue(bytes[i + 2]) >= 0) {
      out.push(hexValue(bytes[i + 1]) * 16 + hexValue(bytes[i + 2]));
      i += 2;
    } else {
      out.push(b);
    }
  }
  return utf8DecodeLossy(out);
}

/**
 * Parses `application/x-www-form-urlencoded` bytes into [name, value] pairs, in
 * order (`form_urlencoded::parse`): empty pieces are skipped, a piece without
 * `=` has an empty value.
 */
export function parseForm(bytes) {
  const pairs = [];
  let start = 0;
  const n = bytes.length;
  while (start <= n) {
    let end = start;
    while (end < n && bytes[end] !== 0x26) end++;
    if (end > start) {
      const piece = Array.prototype.slice.call(bytes, start, end);
      const eq = piece.indexOf(0x3d);
      const name = eq < 0 ? piece : piece.slice(0, eq);
      const value = eq < 0 ? [] : piece.slice(eq + 1);
      pairs.push([decodeComponent(name), decodeComponent(value)]);
    }
    start = end + 1;
  }
  return pairs;
}

/**
 * `parseForm(utf8Encode(query))` for a query string, faster: QuickJS runs the
 * byte-by-byte version at a few hundred nanoseconds a byte, the native
 * `decodeURIComponent` at a few. Where that refuses a component (a bad `%XX`,
 * ill-formed UTF-8) the byte-by-byte decoding gives the lossy result.
 */
export function parseQuery(query) {
  // Index loops and split/join rather than iterators and regular expressions:
  // in QuickJS each of those costs microseconds, and this runs on every request.
  const pairs = [];
  const pieces = query.split("&");
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    if (piece === "") continue;
    const eq = piece.indexOf("=");
    const name = eq < 0 ? piece : piece.slice(0, eq);
    const value = eq < 0 ? "" : piece.slice(eq + 1);
    // One look at the piece instead of two at each half (the usual `name=value` needs no decoding on one side).
    const plain = !piece.includes("%") && !piece.includes("+");
    pairs.push(plain ? [name, value] : [decodeText(name), decodeText(value)]);
  }
  return pairs;
}

/** `decodeComponent` of a string's UTF-8 bytes. */
function decodeText(text) {
  const spaced = text.includes("+") ? text.split("+").join(" ") : text;
  if (!spaced.includes("%")) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return decodeComponent(utf8Encode(text));
  }
}

/** The first value of `name` (RapidSMS: the first occurrence wins). */
export function getParam(pairs, name) {
  for (let i = 0; i < pairs.length; i++) if (pairs[i][0] === name) return pairs[i][1];
  return null;
}

/** `Params::required`: the first value, trimmed, or a 400 naming the parameter. */
export function requiredParam(pairs, name) {
  const raw = getParam(pairs, name);
  if (raw === null) throw invalidRequest(`missing parameter '${name}'`);
  const value = rustTrim(raw);
  if (value === "") throw invalidRequest(`parameter '${name}' is empty`);
  return value;
}

function invalidRequest(reason) {
  return { tag: "invalid-request", val: reason };
}

const SECRET_OPEN = "{{secret:";

/**
 * The first `{{secret:NAME}}` in `text` as [before, reference, after], or null;
 * the name must be non-empty and free of braces so nothing else passes unencoded.
 */
function splitSecretRef(text) {
  const start = text.indexOf(SECRET_OPEN);
  if (start < 0) return null;
  const nameStart = start + SECRET_OPEN.length;
  const nameLen = text.slice(nameStart).indexOf("}}");
  if (nameLen < 0) return null;
  const name = text.slice(nameStart, nameStart + nameLen);
  if (name === "" || name.includes("{") || name.includes("}")) return null;
  const end = nameStart + nameLen + 2;
  return [text.slice(0, start), text.slice(start, end), text.slice(end)];
}

/** Encodes `value` except for its well-formed `{{secret:NAME}}` references. */
function encodeKeepingRefs(value) {
  let out = "";
  let rest = value;
  for (let split = splitSecretRef(rest); split !== null; split = splitSecretRef(rest)) {
    out += encodeComponent(split[0]) + split[1];
    rest = split[2];
  }
  return out + encodeComponent(rest);
}

/**
 * `Params::encode_with_secret_refs`: like `encodePairs`, but references in the
 * values are left for the host to fill in. Only for the operator's own values.
 */
export function encodeWithSecretRefs(pairs) {
  return pairs.map(([name, value]) => encodeComponent(name) + "=" + encodeKeepingRefs(value)).join("&");
}

// ---------------------------------------------------------------- JSON out

/** A JSON string as serde_json writes it (compact; same escapes as `JSON.stringify`). */
export function jsonString(text) {
  return JSON.stringify(text);
}

/** A JSON string with every `{` written as `\u007b` (`json::to_string_untrusted`). */
export function jsonStringUntrusted(text) {
  return JSON.stringify(text).replace(/\{/g, "\\u007b");
}

/**
 * `json::object_body` for string members: `trusted` ([name, value] pairs from
 * the operator) keep their `{{secret:NAME}}` references, `untrusted` ones (the
 * message's) cannot carry any; a name in both takes the untrusted value. Each
 * side is a serde_json map: sorted by name, the last duplicate wins.
 */
export function objectBody(trusted, untrusted) {
  const t = toSortedMap(trusted);
  const u = toSortedMap(untrusted);
  const members = [];
  for (const [name, value] of t) {
    if (!u.has(name)) members.push(jsonString(name) + ":" + jsonString(value));
  }
  for (const [name, value] of u) {
    members.push(jsonStringUntrusted(name) + ":" + jsonStringUntrusted(value));
  }
  return "{" + members.join(",") + "}";
}

function toSortedMap(pairs) {
  const map = new Map();
  for (const [name, value] of pairs) map.set(name, value);
  return new Map([...map.entries()].sort((a, b) => compareUtf8(a[0], b[0])));
}

// ---------------------------------------------------------------- JSON in

/**
 * A strict JSON parser for the operator's configuration. Objects become Maps
 * sorted by key (serde_json's default map), numbers keep what serde_json would
 * print for them (`{ num: "text" }`), so `31` stays `31` and `1.0` stays `1.0`.
 */
export function parseJson(text) {
  let pos = 0;
  const fail = (what) => {
    let line = 1;
    let column = 0;
    for (let i = 0; i < pos && i < text.length; i++) {
      if (text[i] === "\n") {
        line++;
        column = 0;
      } else column++;
    }
    throw new SyntaxError(`${what} at line ${line} column ${column + (pos < text.length ? 1 : 0)}`);
  };
  const ws = () => {
    while (pos < text.length && " \t\n\r".includes(text[pos])) pos++;
  };
  const value = (depth) => {
    if (depth > 128) fail("recursion limit exceeded");
    ws();
    if (pos >= text.length) fail("EOF while parsing a value");
    const c = text[pos];
    if (c === "{") {
      pos++;
      const entries = new Map();
      ws();
      if (text[pos] === "}") {
        pos++;
        return sortMap(entries);
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail(pos >= text.length ? "EOF while parsing an object" : "key must be a string");
        const key = string();
        ws();
        if (text[pos] !== ":") fail(pos >= text.length ? "EOF while parsing an object" : "expected `:`");
        pos++;
        entries.set(key, value(depth + 1));
        ws();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "}") {
          pos++;
          return sortMap(entries);
        }
        fail(pos >= text.length ? "EOF while parsing an object" : "expected `,` or `}`");
      }
    }
    if (c === "[") {
      pos++;
      const items = [];
      ws();
      if (text[pos] === "]") {
        pos++;
        return items;
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "]") {
          pos++;
          return items;
        }
        fail(pos >= text.length ? "EOF while parsing a list" : "expected `,` or `]`");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ]) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return v;
      }
    }
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    fail("expected value");
  };
  const string = () => {
    pos++; // opening quote
    let out = "";
    for (;;) {
      if (pos >= text.length) fail("EOF while parsing a string");
      const c = text[pos++];
      if (c === '"') return out;
      if (c === "\\") {
        const e = text[pos++];
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
        if (simple !== undefined) {
          out += simple;
        } else if (e === "u") {
          const hex = () => {
            const h = text.slice(pos, pos + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("invalid escape");
            pos += 4;
            return parseInt(h, 16);
          };
          const u = hex();
          if (u >= 0xdc00 && u <= 0xdfff) fail("lone leading surrogate in hex escape");
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[pos] !== "\\" || text[pos + 1] !== "u") fail("unexpected end of hex escape");
            pos += 2;
            const low = hex();
            if (low < 0xdc00 || low > 0xdfff) fail("lone leading surrogate in hex escape");
            out += String.fromCharCode(u, low);
          } else {
            out += String.fromCharCode(u);
          }
        } else {
          fail("invalid escape");
        }
      } else if (c < " ") {
        fail("control character (\\u0000-\\u001F) found while parsing a string");
      } else {
        out += c;
      }
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(pos));
    if (!m || (m[0].length === 1 && m[0] === "-")) fail("invalid number");
    pos += m[0].length;
    if (text[pos] !== undefined && /[0-9.eE]/.test(text[pos])) fail("invalid number");
    return { num: serdeNumber(m[0], m[2] === undefined && m[3] === undefined) };
  };
  const result = value(0);
  ws();
  if (pos < text.length) fail("trailing characters");
  return result;
}

/**
 * `parseJson(text)` through the native `JSON.parse` where both must agree:
 * no number anywhere (serde_json's spelling of numbers needs their text), no
 * `\\u` escape (lone surrogates, which `JSON.parse` accepts and serde_json
 * refuses), nesting within serde_json's limit. Anything else, including
 * every invalid document, goes to `parseJson` for its result or its error.
 */
export function parseJsonQuick(text) {
  if (text.includes("\\u")) return parseJson(text);
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return parseJson(text);
  }
  const convert = (v, depth) => {
    if (depth > 128 || typeof v === "number") throw NOT_QUICK;
    if (Array.isArray(v)) return v.map((item) => convert(item, depth + 1));
    if (v !== null && typeof v === "object") {
      const keys = Object.keys(v).sort(compareUtf8);
      return new Map(keys.map((k) => [k, convert(v[k], depth + 1)]));
    }
    return v;
  };
  try {
    return convert(parsed, 0);
  } catch (e) {
    if (e === NOT_QUICK) return parseJson(text);
    throw e;
  }
}
const NOT_QUICK = {};

function sortMap(map) {
  return new Map([...map.entries()].sort((a, b) => compareUtf8(a[0], b[0])));
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

/** What serde_json's `Number::to_string` gives for a JSON number literal. */
function serdeNumber(lexeme, integral) {
  if (integral) {
    const n = BigInt(lexeme);
    if (lexeme.startsWith("-")) {
      if (n === 0n) return "-0.0";
      if (n >= I64_MIN) return n.toString();
    } else if (n <= U64_MAX) {
      return n.toString();
    }
  }
  return formatFloat(Number(lexeme));
}

/** Shortest round-trip f64 text in the layout of serde_json (zmij/ryu): `1.0`, `0.001`, `1e+30`, `1.5e-7`. */
export function formatFloat(f) {
  if (!Number.isFinite(f)) return "null";
  if (f === 0) return Object.is(f, -0) ? "-0.0" : "0.0";
  const sign = f < 0 ? "-" : "";
  // toExponential() without an argument gives the shortest round-trip digits.
  const [mant, exp] = Math.abs(f).toExponential().split("e");
  const digits = mant.replace(".", "");
  const length = digits.length;
  const kk = parseInt(exp, 10) + 1; // 10^(kk-1) <= |f| < 10^kk
  const k = kk - length;
  let body;
  if (k >= 0 && kk <= 16) body = digits + "0".repeat(k) + ".0";
  else if (kk > 0 && kk <= 16) body = digits.slice(0, kk) + "." + digits.slice(kk);
  else if (kk > -5 && kk <= 0) body = "0." + "0".repeat(-kk) + digits;
  else {
    const e = kk - 1;
    const es = e < 0 ? "e-" + -e : "e+" + e;
    body = (length === 1 ? digits : digits[0] + "." + digits.slice(1)) + es;
  }
  return sign + body;
}

// ---------------------------------------------------------------- config

/** The operator's table (`Config`), with the SDK's typed getters and messages. */
export class Config {
  constructor(table) {
    this.table = table;
  }

  /** Parses `backend-context.config`; throws the reason as a string. */
  static parse(json) {
    if (rustTrim(json) === "") return new Config(new Map());
    let value;
    try {
      value = parseJsonQuick(json);
    } catch (e) {
      throw `configuration is not valid JSON: ${e && e.message ? e.message : e}`;
    }
    if (!(value instanceof Map)) throw "configuration is not a table";
    return new Config(value);
  }

  /** A string value or null; numbers and booleans are spelt out. */
  string(key) {
    const v = this.table.get(key);
    const s = scalarText(v);
    if (s !== undefined) return s;
    throw `config key '${key}' must be a string`;
  }

  stringOr(key, fallback) {
    const s = this.string(key);
    return s === null ? fallback : s;
  }

  /** A table of strings as [name, value] pairs, in key order. */
  stringMap(key) {
    const v = this.table.get(key);
    if (v === undefined || v === null) return [];
    if (!(v instanceof Map)) throw `config key '${key}' must be a table`;
    const pairs = [];
    for (const [k, item] of v) {
      const s = item === null ? undefined : scalarText(item);
      if (s === undefined) throw `config key '${key}.${k}' must be a string`;
      pairs.push([k, s]);
    }
    return pairs;
  }
}

/** Text of a string, number or boolean; null when absent; undefined otherwise. */
function scalarText(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "object" && !(v instanceof Map) && !Array.isArray(v) && typeof v.num === "string") return v.num;
  return undefined;
}

// ---------------------------------------------------------------- HTTP

/** A readable one-line description of a host HTTP error (`http::describe`). */
export function describeHttpError(e) {
  switch (e.tag) {
    case "denied":
      return `denied by the gateway: ${e.val}`;
    case "timeout":
      return "timed out";
    case "too-large":
      return `response larger than ${e.val} bytes`;
    case "invalid-request":
      return `invalid request: ${e.val}`;
    case "transport":
      return `transport error: ${e.val}`;
    case "limit-exceeded":
      return `limit exceeded: ${e.val}`;
    default:
      return String(e.val);
  }
}

/** `From<http::Error> for SendError`: denials and malformed requests will not fix themselves. */
export function sendErrorFromHttp(e) {
  const reason = describeHttpError(e);
  return e.tag === "denied" || e.tag === "invalid-request"
    ? { tag: "config", val: reason }
    : { tag: "retryable", val: reason };
}

/**
 * `Retry-After` in milliseconds when given in whole seconds (`u64::from_str`),
 * saturating, else null. The bindings take a u64 as a Number, so past 2^53 ms
 * (285,000 years) the value is the nearest double (never above u64::MAX).
 */
export function retryAfterMs(headers) {
  for (const [name, value] of headers) {
    if (name !== "retry-after") continue;
    const text = rustTrim(value);
    if (!/^\+?[0-9]+$/.test(text)) return null;
    const secs = BigInt(text);
    if (secs > U64_MAX) return null;
    const ms = secs * 1000n;
    return ms > U64_MAX_AS_DOUBLE ? Number(U64_MAX_AS_DOUBLE) : Number(ms);
  }
  return null;
}

/** The largest double that is not above u64::MAX (2^64 - 2048). */
const U64_MAX_AS_DOUBLE = (1n << 64n) - 2048n;
