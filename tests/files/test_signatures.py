"""Upload policies and download links: what the signatures bind, pure functions."""

from __future__ import annotations

import base64
import json

import pytest

from meetd.errors import ForbiddenError
from meetd.files import forms, links

KEY = b"k" * 32
POLICY = forms.UploadPolicy(
    key="auto-expiring-temp/logos/white/abc",
    content_type="image/png",
    max_bytes=1000,
    expires=2_000,
    extra_fields={"logoType": "white"},
)


def test_a_form_lists_vonages_fields_in_vonages_order() -> None:
    fields = forms.sign_form(POLICY, KEY)
    assert list(fields) == [
        "Content-Type",
        "key",
        "logoType",
        "bucket",
        "Policy",
        "X-Meetd-Signature",
    ]
    assert fields["bucket"] == "meetd"
    document = json.loads(base64.b64decode(fields["Policy"]))
    assert document == {
        "expires": 2000,
        "key": POLICY.key,
        "content_type": "image/png",
        "max_bytes": 1000,
        "fields": {"logoType": "white"},
    }


def test_a_signed_form_verifies_until_it_expires() -> None:
    fields = forms.sign_form(POLICY, KEY)
    assert forms.verify_form(fields, KEY, now=1999.999) == POLICY
    with pytest.raises(ForbiddenError, match="expired"):
        forms.verify_form(fields, KEY, now=2000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "logos/white/abc"}, "key does not match"),
        ({"Content-Type": "image/svg+xml"}, "Content-Type does not match"),
        ({"logoType": "favicon"}, "logoType does not match"),
        ({"bucket": "other"}, "bucket does not match"),
        ({"acl": "public-read"}, "does not allow the field acl"),
        ({"X-Meetd-Signature": "0" * 64}, "signature does not match"),
        ({"X-Meetd-Signature": "ü"}, "signature does not match"),
        ({"X-Meetd-Signature": ""}, "no policy or no signature"),
        ({"Policy": ""}, "no policy or no signature"),
    ],
)
def test_any_change_to_a_form_is_refused(change: dict[str, str], message: str) -> None:
    fields = {**forms.sign_form(POLICY, KEY), **change}
    with pytest.raises(ForbiddenError, match=message):
        forms.verify_form(fields, KEY, now=0)


def test_a_policy_edited_for_more_bytes_or_time_loses_its_signature() -> None:
    fields = forms.sign_form(POLICY, KEY)
    document = json.loads(base64.b64decode(fields["Policy"]))
    document["max_bytes"] = 10**9
    fields["Policy"] = base64.b64encode(json.dumps(document).encode()).decode()
    with pytest.raises(ForbiddenError, match="signature does not match"):
        forms.verify_form(fields, KEY, now=0)


def test_a_field_left_out_is_refused() -> None:
    fields = forms.sign_form(POLICY, KEY)
    del fields["logoType"]
    with pytest.raises(ForbiddenError, match="logoType does not match"):
        forms.verify_form(fields, KEY, now=0)


def test_another_key_does_not_verify() -> None:
    with pytest.raises(ForbiddenError, match="signature"):
        forms.verify_form(forms.sign_form(POLICY, KEY), b"x" * 32, now=0)


def test_a_signed_policy_that_is_not_a_policy_is_refused() -> None:
    # Only possible with the key itself; still a 403, never a crash.
    for encoded in ("not base64!", _b64(b"[1]"), _b64(b"{}"), _b64(b'{"fields": {"a": 1}}')):
        fields = {"Policy": encoded, "X-Meetd-Signature": forms._signature(encoded, KEY)}
        with pytest.raises(ForbiddenError, match="cannot be read"):
            forms.verify_form(fields, KEY, now=0)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_link_opens_its_key_until_it_expires() -> None:
    signature = links.sign_link("recordings/a.mp4", 500, KEY)
    assert links.verify_link("recordings/a.mp4", "500", signature, KEY, now=499)
    assert not links.verify_link("recordings/a.mp4", "500", signature, KEY, now=500)
    assert not links.verify_link("recordings/b.mp4", "500", signature, KEY, now=0)
    assert not links.verify_link("recordings/a.mp4", "501", signature, KEY, now=0)
    assert not links.verify_link("recordings/a.mp4", "500", signature, b"x" * 32, now=0)


@pytest.mark.parametrize(
    ("expires", "signature"),
    [
        (None, "x"),
        ("500", None),
        ("-1", "x"),
        ("5e2", "x"),
        ("9" * 13, "x"),
        ("\u0665\u0660\u0660", "x"),
    ],
)
def test_malformed_link_queries_do_not_verify(expires: str | None, signature: str | None) -> None:
    assert not links.verify_link("recordings/a.mp4", expires, signature, KEY, now=0)
