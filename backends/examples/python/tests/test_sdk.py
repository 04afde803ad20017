"""Unit tests of the pure helpers, with the Rust SDK's own test vectors.

Run with any CPython 3: python3 -m unittest discover -s backends/examples/python/tests
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from smsgw_sdk import (  # noqa: E402
    Config,
    ConfigError,
    _float_text,
    encode_pairs,
    encode_pairs_with_secret_refs,
    object_body,
    parse_form,
    parse_u64,
    trim,
)


class Form(unittest.TestCase):
    def test_secret_refs_survive_encoding_and_nothing_else_does(self):
        # guest-sdk/src/params.rs: secret_refs_survive_encoding_and_nothing_else_does
        pairs = [
            ("password", "{{secret:kannel_password}}"),
            ("user", "a b&{{secret:}}{{secret:x"),
            ("mixed", "pre {{secret:a}}/{{secret:b}}"),
        ]
        self.assertEqual(
            encode_pairs_with_secret_refs(pairs),
            "password={{secret:kannel_password}}&user=a+b%26%7B%7Bsecret%3A%7D%7D%7B%7Bsecret%3Ax"
            "&mixed=pre+{{secret:a}}%2F{{secret:b}}",
        )

    def test_message_values_are_fully_encoded(self):
        self.assertEqual(
            encode_pairs([("text", "{{secret:k}} ~*-._é")]),
            "text=%7B%7Bsecret%3Ak%7D%7D+%7E*-._%C3%A9",
        )

    def test_parse_is_form_urlencoded(self):
        self.assertEqual(
            parse_form("a=%2B1+2&&b&c=%zz%E9&a=second&d=x=y"),
            [("a", "+1 2"), ("b", ""), ("c", "%zz\ufffd"), ("a", "second"), ("d", "x=y")],
        )
        self.assertEqual(parse_form(b"t=h%C3%A9llo+%F0%9F%98%80"), [("t", "héllo 😀")])
        # Stray and short escapes stay as they are, case does not matter, a
        # decoded + is not a space.
        self.assertEqual(
            parse_form("x=%4&y=100%&z=%%41&w=%e9%2b%2B+&v=%C0%AF"),
            [("x", "%4"), ("y", "100%"), ("z", "%A"), ("w", "\ufffd++ "), ("v", "\ufffd\ufffd")],
        )

    def test_trim_is_rusts(self):
        self.assertEqual(trim("\u00a0 x\t\u3000"), "x")
        self.assertEqual(trim("\x1cx\x1f"), "\x1cx\x1f")  # str.strip() would remove these


class Json(unittest.TestCase):
    def test_untrusted_strings_lose_their_references_but_not_their_meaning(self):
        body = object_body([], [("content", "{{secret:pw}} {x}"), ("q", "\"\n\x01é")])
        self.assertNotIn("{{secret:", body[1:-1])
        self.assertEqual(json.loads(body), {"content": "{{secret:pw}} {x}", "q": "\"\n\x01é"})

    def test_object_body_keeps_trusted_references_only(self):
        # guest-sdk/src/json.rs: object_body_keeps_trusted_references_only
        body = object_body([("key", "{{secret:api}}"), ("content", "ignored")], [("content", "{{secret:api}}")])
        self.assertEqual(body.count("{{secret:api}}"), 1)
        self.assertEqual(json.loads(body), {"key": "{{secret:api}}", "content": "{{secret:api}}"})
        self.assertEqual(body, '{"key":"{{secret:api}}","content":"\\u007b\\u007bsecret:api}}"}')


class Configuration(unittest.TestCase):
    def test_scalars_read_as_text(self):
        c = Config.parse('{"a": 5, "b": true, "c": 1.5, "d": 1e20, "e": -0, "f": 1e-5, "g": null}')
        self.assertEqual([c.string(k) for k in "abcdefg"], ["5", "true", "1.5", "1e+20", "-0.0", "0.00001", None])

    def test_errors_name_the_key(self):
        with self.assertRaisesRegex(ConfigError, "config key 'x' must be a string"):
            Config.parse('{"x": [1]}').string("x")
        with self.assertRaisesRegex(ConfigError, "config key 'p.b' must be a string"):
            Config.parse('{"p": {"a": "1", "b": {}}}').string_map("p")
        with self.assertRaisesRegex(ConfigError, "configuration is not a table"):
            Config.parse("[]")
        self.assertEqual(Config.parse("  ").string("x"), None)

    def test_string_map_is_in_key_order(self):
        c = Config.parse('{"p": {"z": 1, "a": "x", "é": false, "Z": "y"}}')
        self.assertEqual(c.string_map("p"), [("Z", "y"), ("a", "x"), ("z", "1"), ("é", "false")])

    def test_floats_print_like_serde_json(self):
        # zmij's own test vectors (serde_json 1.0.15x formats f64 with zmij)
        for value, text in [(6.62607015e-34, "6.62607015e-34"), (5.444310685350916e14, "544431068535091.6"),
                            (5e-324, "5e-324"), (1.0, "1.0"), (-0.0, "-0.0"), (2.9802322387695312e-08,
                            "2.9802322387695312e-8"), (3.439070283483335e35, "3.439070283483335e+35"),
                            (-5942736479622170.0, "-5942736479622170.0"), (1e16, "1e+16")]:
            self.assertEqual(_float_text(value), text)


class RetryAfter(unittest.TestCase):
    def test_parse_u64_is_rusts(self):
        self.assertEqual([parse_u64(t) for t in ["30", "+7", "-1", "1.5", "", "+", "1_0", "٣", str(2**64)]],
                         [30, 7, None, None, None, None, None, None, None])


if __name__ == "__main__":
    unittest.main()
