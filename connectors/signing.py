"""HMAC-SHA256 signatures over timestamp and body, for calls both ways.

The hub signs its calls to partners (X-Hub-Timestamp, X-Hub-Signature); a
partner signs its webhooks to the hub (X-Partner-Timestamp, X-Partner-Signature)
with the same shared secret. A signature is `v1=` + hex(HMAC(secret,
"<timestamp>." + body)); a timestamp more than five minutes away is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_SKEW_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(secret: str, body: bytes, prefix: str = "Hub") -> dict[str, str]:
    """The timestamp and signature headers for a body sent now."""
    timestamp = str(int(time.time()))
    return {
        f"X-{prefix}-Timestamp": timestamp,
        f"X-{prefix}-Signature": sign(secret, timestamp, body),
    }


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float | None = None
) -> str | None:
    """None when the signature is good and fresh; else why it is refused."""
    if not timestamp or not signature:
        return "missing signature headers"
    # Headers arrive as latin-1 text: anything but ASCII is malformed, never compared
    # (hmac.compare_digest refuses non-ASCII str) and never read as digits of another script.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "malformed timestamp"
    if not signature.isascii():
        return "malformed signature"
    sent = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - sent) > MAX_SKEW_SECONDS:
        return "stale timestamp: more than 5 minutes from now"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "bad signature"
    return None
