"""Authentication (contract §2): Basic with the account's key and secret, RS256 JWTs naming
an application, and one 401 shape for every failure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from tests.support import PRIVATE_KEY_PEM, PUBLIC_KEY_PEM, Caller, basic_header, sign_jwt

ROOMS = "/v1/meetings/rooms"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_jwt(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    """A compact JWS built byte by byte, for tokens PyJWT refuses to make."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def rs256(data: bytes) -> bytes:
    """An RS256 signature with the key the test applications trust."""
    key = serialization.load_pem_private_key(PRIVATE_KEY_PEM.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def now_s(clock: FakeClock) -> int:
    return clock.now_ms() // 1000


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    # A challenge naming a scheme meetd takes (RFC 9110 §11.6.1).
    assert re.match(r"(Basic|Bearer)\b", response.headers["www-authenticate"])
    body = response.json()
    assert list(body) == ["type", "title", "detail", "instance"]
    assert body["type"].endswith("/api-errors#unauthorized")
    assert body["type"].startswith("https://")
    assert body["title"] == "Unauthorized"
    assert body["detail"] == "You did not provide correct credentials."
    assert uuid.UUID(body["instance"])


def get_rooms(client: TestClient, headers: dict[str, str]) -> Any:
    return client.get(ROOMS, headers=headers)


# -- Basic ------------------------------------------------------------------------------------


def test_basic_acts_on_the_default_application(client: TestClient, account: Caller) -> None:
    created = client.post(ROOMS, headers=account.basic, json={"display_name": "b"})
    assert created.status_code == 201
    listed = client.get(ROOMS, headers=account.bearer()).json()
    assert [room["id"] for room in listed["_embedded"]] == [created.json()["id"]]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda a: basic_header(a.api_key, a.api_secret + "x"), id="wrong-secret"),
        pytest.param(lambda a: basic_header(a.api_key, ""), id="empty-secret"),
        pytest.param(lambda a: basic_header(a.api_key, a.api_secret.upper()), id="secret-case"),
        pytest.param(lambda a: basic_header("nosuchkey", a.api_secret), id="unknown-key"),
        pytest.param(lambda a: basic_header(a.api_key.upper(), a.api_secret), id="key-case"),
        pytest.param(lambda a: basic_header("", ""), id="empty-pair"),
        pytest.param(lambda a: {"Authorization": "Basic !!!not-base64!!!"}, id="bad-base64"),
        pytest.param(lambda a: {"Authorization": "Basic dXNlcjpwYXNz="}, id="bad-padding"),
        pytest.param(
            lambda a: {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
            id="not-utf8",
        ),
        pytest.param(
            lambda a: {"Authorization": "Basic " + base64.b64encode(a.api_key.encode()).decode()},
            id="no-colon",
        ),
        pytest.param(lambda a: {"Authorization": "Basic é".encode()}, id="non-ascii"),
        pytest.param(lambda a: basic_header("a\x00", a.api_secret), id="nul-in-key"),
        pytest.param(lambda a: basic_header(a.api_key + "\x00", a.api_secret), id="nul-after-key"),
        pytest.param(lambda a: basic_header("\x07bell", a.api_secret), id="control-in-key"),
        pytest.param(lambda a: {"Authorization": "Basic"}, id="no-credentials"),
        pytest.param(lambda a: {"Authorization": ""}, id="empty-header"),
        pytest.param(lambda a: {}, id="missing-header"),
        pytest.param(
            lambda a: {"Authorization": a.basic["Authorization"].replace("Basic", "Digest")},
            id="unknown-scheme",
        ),
        pytest.param(lambda a: {"Authorization": "Token abc"}, id="token-scheme"),
        pytest.param(
            lambda a: {"Authorization": a.basic["Authorization"].removeprefix("Basic ")},
            id="no-scheme",
        ),
    ],
)
def test_bad_basic_credentials_are_a_401(client: TestClient, account: Caller, header: Any) -> None:
    assert_unauthorized(get_rooms(client, header(account)))
    assert get_rooms(client, account.basic).status_code == 200  # the right pair still works


def test_another_accounts_secret_does_not_open_this_key(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    assert_unauthorized(get_rooms(client, basic_header(account.api_key, other_account.api_secret)))


def test_every_401_has_its_own_instance(client: TestClient) -> None:
    first = client.get(ROOMS).json()["instance"]
    second = client.get(ROOMS).json()["instance"]
    assert first != second


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", ROOMS, None),
        ("POST", ROOMS, {"display_name": "x"}),
        ("POST", ROOMS, {"not": "valid"}),
        ("GET", f"{ROOMS}/{uuid.uuid4()}", None),
        ("GET", f"{ROOMS}/not-a-uuid", None),
        ("PATCH", f"{ROOMS}/{uuid.uuid4()}", {"update_details": {}}),
        ("DELETE", f"{ROOMS}/{uuid.uuid4()}", None),
        ("GET", "/beta/meetings/rooms?page_size=0", None),
    ],
)
def test_every_room_endpoint_asks_for_credentials_first(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    assert_unauthorized(client.request(method, path, json=body))


def test_a_failed_request_writes_nothing(client: TestClient, account: Caller) -> None:
    bad = basic_header(account.api_key, "wrong")
    assert_unauthorized(client.post(ROOMS, headers=bad, json={"display_name": "x"}))
    assert client.get(ROOMS, headers=account.basic).json()["total_items"] == 0


# -- header name and scheme case ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_basic_header_and_scheme_in_any_case(
    client: TestClient, account: Caller, name: str, scheme: str
) -> None:
    token = account.basic["Authorization"].removeprefix("Basic ")
    assert get_rooms(client, {name: f"{scheme} {token}"}).status_code == 200


@pytest.mark.parametrize("name", ["Authorization", "authorization"])
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_header_and_scheme_in_any_case(
    client: TestClient, account: Caller, name: str, scheme: str
) -> None:
    token = account.bearer()["Authorization"].removeprefix("Bearer ")
    assert get_rooms(client, {name: f"{scheme} {token}"}).status_code == 200


# -- JWT --------------------------------------------------------------------------------------


def test_jwt_as_the_sdks_send_it(client: TestClient, account: Caller, clock: FakeClock) -> None:
    headers = account.bearer(exp=now_s(clock) + 900, nbf=now_s(clock) - 5)
    created = client.post(ROOMS, headers=headers, json={"display_name": "jwt"})
    assert created.status_code == 201
    assert client.get(f"{ROOMS}/{created.json()['id']}", headers=account.basic).status_code == 200


def test_jwt_signed_with_another_key(client: TestClient, account: Caller) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    token = sign_jwt(account.application_id, key=pem, iat=now_s(account.clock))
    assert_unauthorized(get_rooms(client, {"Authorization": f"Bearer {token}"}))


def test_jwt_with_a_tampered_payload(client: TestClient, account: Caller) -> None:
    token = account.bearer()["Authorization"].removeprefix("Bearer ")
    header, _, signature = token.split(".")
    claims = {"application_id": account.application_id, "iat": now_s(account.clock) + 1}
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert_unauthorized(get_rooms(client, {"Authorization": f"Bearer {forged}"}))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_jwt_with_alg_none(client: TestClient, account: Caller, alg: str) -> None:
    claims = {"application_id": account.application_id, "iat": now_s(account.clock)}
    unsigned = hand_made_jwt({"alg": alg, "typ": "JWT"}, claims, lambda _: b"")
    assert_unauthorized(get_rooms(client, {"Authorization": f"Bearer {unsigned}"}))


@pytest.mark.parametrize("digest", [hashlib.sha256, hashlib.sha384, hashlib.sha512])
def test_jwt_hmac_signed_with_the_public_key(
    client: TestClient, account: Caller, digest: Any
) -> None:
    """The classic key-confusion attack: HMAC keyed with the public key PEM text."""
    alg = {"sha256": "HS256", "sha384": "HS384", "sha512": "HS512"}[digest().name]
    claims = {"application_id": account.application_id, "iat": now_s(account.clock)}
    token = hand_made_jwt(
        {"alg": alg, "typ": "JWT"},
        claims,
        lambda data: hmac.new(PUBLIC_KEY_PEM.encode(), data, digest).digest(),
    )
    assert_unauthorized(get_rooms(client, {"Authorization": f"Bearer {token}"}))


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
def test_jwt_with_another_rsa_algorithm(client: TestClient, account: Caller, alg: str) -> None:
    token = sign_jwt(account.application_id, iat=now_s(account.clock), _alg=alg)
    assert_unauthorized(get_rooms(client, {"Authorization": f"Bearer {token}"}))


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "eyJhbGciOiJSUzI1NiJ9..", "x" * 5000],
)
def test_malformed_jwt(client: TestClient, token: str) -> None:
    assert_unauthorized(get_rooms(client, {"Authorization": f"Bearer {token}"}))


def test_expired_jwt(client: TestClient, account: Caller, clock: FakeClock) -> None:
    assert_unauthorized(get_rooms(client, account.bearer(exp=now_s(clock) - 1)))
    assert_unauthorized(get_rooms(client, account.bearer(exp=now_s(clock))))
    assert get_rooms(client, account.bearer(exp=now_s(clock) + 1)).status_code == 200


def test_expiry_follows_the_apps_clock(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    headers = account.bearer(exp=now_s(clock) + 60)
    assert get_rooms(client, headers).status_code == 200
    clock.advance(60)
    assert_unauthorized(get_rooms(client, headers))


def test_jwt_without_exp_lives_fifteen_minutes(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    assert_unauthorized(get_rooms(client, account.bearer(iat=now_s(clock) - 15 * 60 - 1)))
    assert_unauthorized(get_rooms(client, account.bearer(iat=now_s(clock) - 15 * 60)))
    assert get_rooms(client, account.bearer(iat=now_s(clock) - 15 * 60 + 1)).status_code == 200


def test_explicit_exp_outlives_the_default(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    headers = account.bearer(iat=now_s(clock) - 3600, exp=now_s(clock) + 60)
    assert get_rooms(client, headers).status_code == 200


def test_jwt_not_yet_valid(client: TestClient, account: Caller, clock: FakeClock) -> None:
    assert_unauthorized(get_rooms(client, account.bearer(nbf=now_s(clock) + 30)))
    assert_unauthorized(get_rooms(client, account.bearer(nbf=now_s(clock) + 1)))
    assert get_rooms(client, account.bearer(nbf=now_s(clock))).status_code == 200


def test_iat_in_the_future(client: TestClient, account: Caller, clock: FakeClock) -> None:
    assert_unauthorized(get_rooms(client, account.bearer(iat=now_s(clock) + 61)))
    assert_unauthorized(get_rooms(client, account.bearer(iat=now_s(clock) + 3600)))
    assert get_rooms(client, account.bearer(iat=now_s(clock) + 59)).status_code == 200
    assert get_rooms(client, account.bearer(iat=now_s(clock) + 60)).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iat": None}, id="missing-iat"),
        pytest.param({"iat": "now"}, id="text-iat"),
        pytest.param({"iat": True}, id="boolean-iat"),
        pytest.param({"exp": "later"}, id="text-exp"),
        pytest.param({"nbf": "soon"}, id="text-nbf"),
        pytest.param({"application_id": None}, id="missing-application-id"),
        pytest.param({"application_id": 42}, id="numeric-application-id"),
        pytest.param({"application_id": ""}, id="empty-application-id"),
        pytest.param({"application_id": str(uuid.uuid4())}, id="unknown-application-id"),
        pytest.param({"application_id": "not-a-uuid"}, id="malformed-application-id"),
        pytest.param({"application_id": "\ud800"}, id="lone-surrogate-application-id"),
        pytest.param({"application_id": "a\x00b"}, id="nul-application-id"),
        pytest.param({"application_id": "\x00" * 36}, id="nul-uuid-length-application-id"),
        pytest.param({"iat": 10**400}, id="huge-iat"),
        pytest.param({"exp": 10**400}, id="huge-exp"),
        pytest.param({"nbf": -(10**400)}, id="huge-nbf"),
        pytest.param({"iat": math.nan}, id="nan-iat"),
        pytest.param({"exp": math.nan}, id="nan-exp"),
        pytest.param({"exp": math.inf}, id="infinite-exp"),
        pytest.param({"nbf": math.nan}, id="nan-nbf"),
        pytest.param({"nbf": -math.inf}, id="infinite-nbf"),
    ],
)
def test_jwt_with_bad_claims(
    client: TestClient, account: Caller, clock: FakeClock, claims: dict[str, Any]
) -> None:
    body: dict[str, Any] = {"application_id": account.application_id, "iat": now_s(clock)}
    body.update(claims)
    body = {key: value for key, value in body.items() if value is not None}
    token = hand_made_jwt({"alg": "RS256", "typ": "JWT"}, body, rs256)
    assert_unauthorized(get_rooms(client, {"Authorization": f"Bearer {token}"}))
    # The same claims without the fault are accepted: the fault alone is the reason.
    good = {"application_id": account.application_id, "iat": now_s(clock)}
    token = hand_made_jwt({"alg": "RS256", "typ": "JWT"}, good, rs256)
    assert get_rooms(client, {"Authorization": f"Bearer {token}"}).status_code == 200


def test_jwt_application_id_in_upper_case(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    # Read like a UUID in a path: any case names the same application.
    claims = {"application_id": account.application_id.upper(), "iat": now_s(clock)}
    token = hand_made_jwt({"alg": "RS256", "typ": "JWT"}, claims, rs256)
    bearer = {"Authorization": f"Bearer {token}"}
    created = client.post(ROOMS, headers=bearer, json={"display_name": "upper"})
    assert created.status_code == 201, created.text
    listed = client.get(ROOMS, headers=account.bearer()).json()
    assert [room["id"] for room in listed["_embedded"]] == [created.json()["id"]]


def test_jwt_of_an_application_without_a_public_key(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    database = client.app.state.services.database  # type: ignore[attr-defined]
    database.write_blocking(
        lambda c: c.execute(
            "UPDATE applications SET public_key_pem = NULL WHERE id = ?",
            (account.application_id,),
        )
    )
    assert_unauthorized(get_rooms(client, account.bearer()))
    assert get_rooms(client, account.basic).status_code == 200


def test_jwt_acts_on_the_application_it_names(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    created = client.post(ROOMS, headers=other_account.bearer(), json={"display_name": "o"})
    assert created.status_code == 201
    assert client.get(ROOMS, headers=account.bearer()).json()["total_items"] == 0
    assert client.get(ROOMS, headers=other_account.basic).json()["total_items"] == 1


def test_recently_verified_credentials_do_not_vouch_for_others(
    client: TestClient, account: Caller
) -> None:
    url = "/v1/meetings/rooms"
    assert client.get(url, headers=account.basic).status_code == 200
    assert client.get(url, headers=account.basic).status_code == 200  # from the cache
    wrong = basic_header(account.api_key, account.api_secret + "x")
    assert client.get(url, headers=wrong).status_code == 401
    services = client.app.state.services  # type: ignore[attr-defined]
    assert all(account.api_secret not in repr(key) for key in services.auth._verified)
