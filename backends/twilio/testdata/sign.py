#!/usr/bin/env python3
"""Computes X-Twilio-Signature for a fixture request, as Twilio does.

Usage: sign.py AUTH_TOKEN URL [FORM_BODY]
  URL is the full URL Twilio calls (the fixture's request.url);
  FORM_BODY is the urlencoded POST body (omit for GET).
The signature is HMAC-SHA1(auth token, URL + each name+value sorted by name), base64.
"""
import base64
import hashlib
import hmac
import sys
from urllib.parse import parse_qsl


def signature(token: str, url: str, body: str = "") -> str:
    params = sorted(set(parse_qsl(body, keep_blank_values=True)))
    data = url + "".join(name + value for name, value in params)
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    print(signature(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else ""))
