"""The local store's upload forms: a policy, signed with meetd's ``files`` key.

They mimic S3's browser POST forms, which the Vonage SDKs were written against: the client
gets ``{"url", "fields"}`` and POSTs every field back with the ``file``. ``Policy`` is
base64 JSON naming what the form allows (key, Content-Type, the extra fields, a size limit,
an expiry); ``X-Meetd-Signature`` is the hex HMAC-SHA256 of that base64 text. As on S3,
every field but the policy and its signature must be one the policy names, with exactly
the value it names, so a holder cannot move the upload to another key, change its type or
``logoType``, or keep using the form after it expires.

Pure: no I/O; the caller passes the time.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from meetd.errors import ForbiddenError

POLICY_FIELD = "Policy"
SIGNATURE_FIELD = "X-Meetd-Signature"
# Vonage's forms named their S3 bucket; clients may expect the field, so meetd names itself.
BUCKET = "meetd"
_PURPOSE = b"meetd-upload-policy\n"  # one key signs forms and links: never the same message


@dataclasses.dataclass(frozen=True, slots=True)
class UploadPolicy:
    key: str
    content_type: str
    max_bytes: int
    expires: int  # Unix seconds
    extra_fields: dict[str, str]

    def fields(self) -> dict[str, str]:
        """The plain fields the form carries, in the order Vonage's forms listed them."""
        return {
            "Content-Type": self.content_type,
            "key": self.key,
            **self.extra_fields,
            "bucket": BUCKET,
        }


def sign_form(policy: UploadPolicy, signing_key: bytes) -> dict[str, str]:
    """The form's fields: the plain ones, the policy and its signature."""
    document = {
        "expires": policy.expires,
        "key": policy.key,
        "content_type": policy.content_type,
        "max_bytes": policy.max_bytes,
        "fields": policy.extra_fields,
    }
    encoded = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    signature = _signature(encoded, signing_key)
    return {**policy.fields(), POLICY_FIELD: encoded, SIGNATURE_FIELD: signature}


def verify_form(fields: Mapping[str, str], signing_key: bytes, now: float) -> UploadPolicy:
    """The policy of a posted form whose signature, expiry and fields all hold.

    Raises ForbiddenError (403) otherwise, like S3 does for a form it will not accept.
    """
    encoded = fields.get(POLICY_FIELD)
    signature = fields.get(SIGNATURE_FIELD)
    if not encoded or not signature:
        raise ForbiddenError("The upload form has no policy or no signature")
    expected = _signature(encoded, signing_key).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        raise ForbiddenError("The upload form's signature does not match its policy")
    policy = _decode(encoded)
    if policy is None:  # signed by this key, so only if the key signed something else
        raise ForbiddenError("The upload form's policy cannot be read")
    if now >= policy.expires:
        raise ForbiddenError("The upload form has expired")
    allowed = policy.fields()
    for name, value in allowed.items():
        if fields.get(name) != value:
            raise ForbiddenError(f"The upload form's {name} does not match its policy")
    for name in fields:
        if name not in allowed and name not in (POLICY_FIELD, SIGNATURE_FIELD):
            raise ForbiddenError(f"The upload form's policy does not allow the field {name}")
    return policy


def _signature(encoded: str, signing_key: bytes) -> str:
    return hmac.new(signing_key, _PURPOSE + encoded.encode(), hashlib.sha256).hexdigest()


def _decode(encoded: str) -> UploadPolicy | None:
    try:
        document: Any = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    extra = document.get("fields")
    values = (document.get(name) for name in ("key", "content_type", "max_bytes", "expires"))
    key, content_type, max_bytes, expires = values
    if not (
        isinstance(key, str)
        and isinstance(content_type, str)
        and type(max_bytes) is int
        and type(expires) is int
        and isinstance(extra, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items())
    ):
        return None
    return UploadPolicy(key, content_type, max_bytes, expires, extra)
