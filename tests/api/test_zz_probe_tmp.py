import base64, uuid
import pytest
from tests.support import Caller

ROOMS = "/v1/meetings/rooms"

def test_probe(client, account: Caller, clock) -> None:
    from meetd.domain.timestamps import format_timestamp
    lt = client.post(ROOMS, headers=account.basic, json={"display_name": "x", "type": "long_term", "expires_at": format_timestamp(clock.now_ms() + 3600_000)}).json()
    cases = [
        ("GET", ROOMS + "?page_size=%00", None, {}),
        ("GET", ROOMS + "?start_id=%00", None, {}),
        ("GET", ROOMS + "/" + "a" * 35 + "%00", None, {}),
        ("GET", ROOMS + "/%2e%2e", None, {}),
        ("GET", ROOMS + "?page_size=5&page_size=abc", None, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"theme_id": "\u0000" * 36}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"expires_at": "\u0000"}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"expires_at": "9999-12-31T23:59:59.999Z"}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"callback_urls": {"rooms_callback_url": "https://x.example/\u0000"}}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"callback_urls": None}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"ui_settings": None}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"ui_settings": {"language": ["fr"]}}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"join_approval_level": {"a": 1}}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"initial_join_options": {"microphone_state": None}}}, {}),
        ("PATCH", f"{ROOMS}/{lt['id']}", {"update_details": {"expire_after_use": None}}, {}),
        ("GET", ROOMS, None, {"Authorization": "Basic " + base64.b64encode("ключ:секрет".encode()).decode()}),
        ("GET", ROOMS, None, {"Authorization": "Bearer " + "e30." * 3}),
        ("GET", ROOMS, None, {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.W10.x"}),
        ("GET", ROOMS, None, {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJhcHBsaWNhdGlvbl9pZCI6IFsxXX0.x"}),
        ("GET", ROOMS, None, {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJhcHBsaWNhdGlvbl9pZCI6ICJceDAwIn0.x"}),
        ("GET", ROOMS, None, {"Authorization": "Bearer W10.e30.x"}),
    ]
    bad = []
    for method, url, body, headers in cases:
        h = headers or account.basic
        r = client.request(method, url, headers=h, json=body)
        print(method, url[:70], body, r.status_code, r.text[:150])
        if r.status_code >= 500:
            bad.append(url)
    assert not bad
