// Unit tests of lib.js on Node (`node --test backends/examples/js/`), with the
// vectors of the Rust SDK's own tests (guest-sdk/src/{params,json}.rs).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Config,
  encodeWithSecretRefs,
  formatFloat,
  objectBody,
  parseForm,
  parseJson,
  parseJsonQuick,
  parseQuery,
  retryAfterMs,
  rustTrim,
  utf8DecodeLossy,
} from "./lib.js";

test("secret references survive encoding and nothing else does", () => {
  const pairs = [
    ["password", "{{secret:kannel_password}}"],
    ["user", "a b&{{secret:}}{{secret:x"],
    ["mixed", "pre {{secret:a}}/{{secret:b}}"],
  ];
  assert.equal(
    encodeWithSecretRefs(pairs),
    "password={{secret:kannel_password}}&user=a+b%26%7B%7Bsecret%3A%7D%7D%7B%7Bsecret%3Ax" +
      "&mixed=pre+{{secret:a}}%2F{{secret:b}}",
  );
});

test("object body keeps trusted references only", () => {
  const text = objectBody(
    [
      ["key", "{{secret:api}}"],
      ["content", "ignored"],
    ],
    [["content", "{{secret:api}} {x}"]],
  );
  assert.equal(text, '{"key":"{{secret:api}}","content":"\\u007b\\u007bsecret:api}} \\u007bx}"}');
  assert.deepEqual(JSON.parse(text), { key: "{{secret:api}}", content: "{{secret:api}} {x}" });
});

test("forms decode like form_urlencoded", () => {
  assert.deepEqual(parseForm([..."identity=%2B1+2&&text=a%zz%C3%A9%FF&flag&text=second"].map((c) => c.charCodeAt(0))), [
    ["identity", "+1 2"],
    ["text", "a%zzé\ufffd"],
    ["flag", ""],
    ["text", "second"],
  ]);
});

test("lossy UTF-8 replaces maximal subparts, as Rust does", () => {
  assert.equal(utf8DecodeLossy([0xf0, 0x9f, 0x98, 0x41, 0xed, 0xa0, 0x80, 0xc0, 0xaf]), "\ufffdA\ufffd\ufffd\ufffd\ufffd\ufffd");
});

test("trim is Rust's, not JavaScript's", () => {
  assert.equal(rustTrim("\u0085 hi\u3000"), "hi");
  assert.equal(rustTrim("\ufeffhi"), "\ufeffhi");
  for (const [text, trimmed] of [["a b", "a b"], [" a", "a"], ["a\t", "a"], ["", ""], ["\u2000x~", "x~"], ["!\u00a0", "!"]]) {
    assert.equal(rustTrim(text), trimmed, JSON.stringify(text));
  }
});

test("config numbers read as serde_json prints them", () => {
  const c = Config.parse('{"a": 31, "b": 1.0, "c": 1e30, "d": -0, "e": 1.5e-7, "f": 18446744073709551615, "g": true}');
  assert.deepEqual(
    ["a", "b", "c", "d", "e", "f", "g"].map((k) => c.string(k)),
    ["31", "1.0", "1e+30", "-0.0", "1.5e-7", "18446744073709551615", "true"],
  );
  assert.equal(formatFloat(123456789012345680000), "1.2345678901234568e+20");
  assert.throws(() => Config.parse("[1]"), /not a table/);
  assert.throws(() => Config.parse("{"), /not valid JSON/);
  assert.throws(() => c.stringMap("a"), /config key 'a' must be a table/);
});

test("Retry-After in seconds becomes milliseconds", () => {
  assert.equal(retryAfterMs([["retry-after", " 30 "]]), 30000);
  assert.equal(retryAfterMs([["retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"]]), null);
  assert.equal(retryAfterMs([]), null);
});

test("the quick query parser gives the byte-by-byte one's result", () => {
  const queries = [
    "id=%2B255700000001&identity=%2B255700000001&text=hello+world&charset=UTF-8&coding=0",
    "a&&b=&=c&&",
    "text=h%C3%A9llo+%2B+%25&x=%zz%4&y=%FF%FEend&z=%ED%A0%80&w=%C0%AF",
    "text=caf\u00e9 \u{1f600}+%F0%9F%98%80&k=%e2%82",
    "plus=a%2Bb+c&eq=a=b=c&pct=100%",
    "",
  ];
  for (const q of queries) {
    const bytes = [];
    for (const ch of q) {
      const c = ch.codePointAt(0);
      if (c < 0x80) bytes.push(c);
      else for (const b of new TextEncoder().encode(ch)) bytes.push(b);
    }
    assert.deepEqual(parseQuery(q), parseForm(bytes), q);
  }
});

test("the quick JSON path agrees with the strict parser, or hands over to it", () => {
  const agree = [
    '{"sendsms_url": "http://127.0.0.1:9/send", "b": {"z": "1", "a": [true, null, "x"]}}',
    '{"dup": "first", "dup": "last", "10": "ten", "9": "nine", "__proto__": "p", "\u00e9": "e"}',
    '{"n": 31, "f": 1.0}',
    "[" + "[".repeat(130) + "]".repeat(131),
    '{"lone": "\ud800"}',
    '{"ctl": "a\u0001"}',
    "{\"a\": 1,}",
    '{"a": "b"} x',
    "  ",
  ];
  const run = (f, text) => {
    try {
      return { ok: f(text) };
    } catch (e) {
      return { err: String(e && e.message ? e.message : e) };
    }
  };
  for (const text of agree) assert.deepEqual(run(parseJsonQuick, text), run(parseJson, text), text);
});
