"""Independent verification of a wabridge delivery, used by the Rust integration tests.

Reads one JSON object from stdin: {"secret", "body", "headers"} (body as the exact text sent).
Checks the Standard Webhooks signature with the official `standardwebhooks` package and the
OpenWA-compatible X-OpenWA-Signature with Python's own hmac. Prints "ok" and exits 0, or prints
the reason and exits 1.
"""

import hashlib
import hmac
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    req = json.load(sys.stdin)
    secret, body, headers = req["secret"], req["body"], req["headers"]
    if secret.startswith("whsec_"):
        wh = Webhook(secret)
    else:
        # A plain (OpenWA-style) secret: its UTF-8 bytes are the HMAC key.
        wh = Webhook(secret.encode("utf-8"))
    try:
        wh.verify(body, headers)
    except Exception as e:  # noqa: BLE001 - report any verification failure
        print(f"standard webhooks verification failed: {e!r}")
        return 1
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body.encode("utf-8"), hashlib.sha256).hexdigest()
    got = headers.get("x-openwa-signature", "")
    if not hmac.compare_digest(expected, got):
        print(f"x-openwa-signature mismatch: {got!r}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
