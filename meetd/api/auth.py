"""Who is calling (contract §2): Basic with the account's API key and secret, acting on its
default application, or an RS256 JWT naming an application, as the official SDKs send.

Every failure is an AuthenticationError, which answers the same 401 whatever the reason;
the reason goes to the log only.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from meetd.clock import Clock
from meetd.domain.validation import canonical_uuid
from meetd.errors import AuthenticationError, NotFoundError
from meetd.store import accounts
from meetd.store.database import Database

DEFAULT_LIFETIME_SECONDS = 15 * 60  # a JWT without "exp" lives this long after "iat"
MAX_FUTURE_IAT_SECONDS = 60
# Credentials read from the store are reused this long: a key or secret change made with the
# CLI reaches running servers within this time.
CACHE_SECONDS = 5.0
_UNKNOWN_KEY_HASH = accounts.hash_secret("no account has this key")


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    application_id: str
    account_id: str


class Authenticator:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        self._accounts: dict[str, tuple[float, tuple[accounts.Account, str] | None]] = {}
        self._keys: dict[str, tuple[float, Any, str]] = {}
        self._verified: dict[bytes, tuple[float, Principal]] = {}
        # Copied for each digest: cheaper than keying a new hash every time.
        self._digest_base = hashlib.blake2b(key=secrets.token_bytes(32), digest_size=16)

    async def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise AuthenticationError("no Authorization header")
        scheme, _, credentials = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            # Credentials verified in the last few seconds are known by a keyed digest of the
            # header, so a client's every request does not repeat the decoding, the lookup
            # and the hash; the secret itself is never kept.
            hashed = self._digest_base.copy()
            hashed.update(header.encode())
            digest = hashed.digest()
            known = self._verified.get(digest)
            if known is not None and time.monotonic() < known[0]:
                return known[1]
            principal = await self._basic(credentials.strip())
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest] = (time.monotonic() + CACHE_SECONDS, principal)
            return principal
        if scheme == "bearer":
            return await self._bearer(credentials.strip())
        raise AuthenticationError(f"unsupported scheme {scheme!r}")

    async def _basic(self, credentials: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except ValueError:  # binascii.Error, non-ASCII text, bytes that are not UTF-8
            raise AuthenticationError("malformed Basic credentials") from None
        api_key, colon, api_secret = decoded.partition(":")
        if not colon:
            raise AuthenticationError("Basic credentials without a colon")
        if not accounts.is_possible_credential(api_key, is_key=True):
            raise AuthenticationError("an API key no account can have")
        now = time.monotonic()
        cached = self._accounts.get(api_key)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            found = await self.database.read(lambda c: accounts.find_account_by_key(c, api_key))
            if len(self._accounts) > 10_000:
                self._accounts.clear()
            cached = self._accounts[api_key] = (now, found)
        found = cached[1]
        # An unknown key costs the same hash as a known one, so timing tells keys apart no more
        # than the answer does.
        stored = found[1] if found is not None else _UNKNOWN_KEY_HASH
        if not accounts.secret_matches(api_secret, stored) or found is None:
            raise AuthenticationError("unknown API key or wrong secret")
        account = found[0]
        return Principal(account.default_application_id, account.id)

    async def _bearer(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as error:
            raise AuthenticationError(f"malformed JWT: {error}") from None
        if header.get("alg") != "RS256":
            raise AuthenticationError(f"JWT algorithm {header.get('alg')!r} is not RS256")
        claimed = unverified.get("application_id")
        if not isinstance(claimed, str):
            raise AuthenticationError("JWT without application_id")
        # Application ids are UUIDs; read like a UUID in a path (any case, canonical form),
        # and anything else names no application, so it never reaches the database.
        application_id = canonical_uuid(claimed)
        if application_id is None:
            raise AuthenticationError("JWT application_id is not a UUID")
        key, account_id = await self._public_key(application_id)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                options={
                    "require": ["iat"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.InvalidTokenError as error:
            raise AuthenticationError(f"JWT rejected: {error}") from None
        check_times(claims, self.clock.now_ms() / 1000)
        return Principal(application_id, account_id)

    async def _public_key(self, application_id: str) -> tuple[Any, str]:
        now = time.monotonic()
        cached = self._keys.get(application_id)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            try:
                app = await self.database.read(
                    lambda c: accounts.get_application(c, application_id)
                )
            except NotFoundError:
                raise AuthenticationError("JWT for an unknown application") from None
            if not app.public_key_pem:
                raise AuthenticationError("the application has no public key")
            key = load_pem_public_key(app.public_key_pem.encode())
            if len(self._keys) > 10_000:
                self._keys.clear()
            cached = self._keys[application_id] = (now, key, app.account_id)
        return cached[1], cached[2]


def check_times(claims: dict[str, Any], now: float) -> None:
    """``iat`` required and not over a minute ahead; ``exp`` (default iat + 15 min); ``nbf``."""
    iat = _number(claims, "iat")
    if iat is None:
        raise AuthenticationError("JWT without a numeric iat")
    if iat > now + MAX_FUTURE_IAT_SECONDS:
        raise AuthenticationError("JWT issued in the future")
    exp = _number(claims, "exp")
    if "exp" in claims and exp is None:
        raise AuthenticationError("JWT exp is not a number")
    if now >= (exp if exp is not None else iat + DEFAULT_LIFETIME_SECONDS):
        raise AuthenticationError("JWT expired")
    nbf = _number(claims, "nbf")
    if "nbf" in claims and (nbf is None or nbf > now):
        raise AuthenticationError("JWT not yet valid")


def _number(claims: dict[str, Any], name: str) -> float | None:
    """The claim as a finite float, or None. JSON numbers may be integers too large for a
    float, and Python's json reads NaN and Infinity, with which ``exp: NaN`` would never
    expire: none of them is a time (RFC 7519 §2, NumericDate)."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
