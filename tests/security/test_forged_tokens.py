"""Forged and unusable tokens: every one is closed with 4001 by the real server.

simplejwt decodes with ``algorithms=[SIMPLE_JWT["ALGORITHM"]]`` (HS256 here), so a token naming
any other algorithm - none, HS512, RS256 - is refused before its signature is looked at; it then
checks exp, nbf, the token type (access only), the jti, and that the user exists and is active.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken

from tests.conftest import communicator_for, make_user, refresh_token_for
from tests.testapp.models import Vendor

from .conftest import SecurityServer, close_code, receive_frame

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

KEY = settings.SIMPLE_JWT["SIGNING_KEY"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    """A JWT assembled by hand, so nothing refuses to make it."""
    parts = [b64(json.dumps(header).encode()), b64(json.dumps(payload, default=str).encode())]
    return ".".join([*parts, signature])


def hs256_with(secret: bytes, payload: dict[str, Any]) -> str:
    head = unsigned({"alg": "HS256", "typ": "JWT"}, payload)[:-1]
    mac = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return f"{head}.{b64(mac)}"


def payload_of(user: Any, **changes: Any) -> dict[str, Any]:
    payload = dict(AccessToken.for_user(user).payload)
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def forge(case: str, owner: Any, victim: Any) -> str:
    now = int(time.time())
    good = str(AccessToken.for_user(owner))
    header, payload, signature = good.split(".")
    forged: dict[str, Callable[[], str]] = {
        "wrong-key": lambda: jwt.encode(payload_of(owner), "k" * 40, algorithm="HS256"),
        "alg-none": lambda: unsigned({"alg": "none", "typ": "JWT"}, payload_of(owner)),
        "alg-None": lambda: unsigned({"alg": "None"}, payload_of(owner)),
        "alg-none-with-the-real-signature": lambda: unsigned(
            {"alg": "none"}, payload_of(owner), signature
        ),
        "hs512-with-the-right-key": lambda: jwt.encode(payload_of(owner), KEY, "HS512"),
        "hs384-with-the-right-key": lambda: jwt.encode(payload_of(owner), KEY, "HS384"),
        "rs256-with-an-attackers-key": lambda: jwt.encode(
            payload_of(owner), pem(rsa_private_key())[0], "RS256"
        ),
        "exp-in-the-past": lambda: jwt.encode(payload_of(owner, exp=now - 60), KEY, "HS256"),
        "nbf-in-the-future": lambda: jwt.encode(payload_of(owner, nbf=now + 3600), KEY, "HS256"),
        "iat-in-the-future": lambda: jwt.encode(payload_of(owner, iat=now + 3600), KEY, "HS256"),
        "no-exp": lambda: jwt.encode(payload_of(owner, exp=None), KEY, "HS256"),
        "no-jti": lambda: jwt.encode(payload_of(owner, jti=None), KEY, "HS256"),
        "no-token-type": lambda: jwt.encode(payload_of(owner, token_type=None), KEY, "HS256"),
        "token-type-refresh": lambda: refresh_token_for(owner),
        "refresh-typed-payload-signed-right": lambda: jwt.encode(
            payload_of(owner, token_type="refresh"), KEY, "HS256"
        ),
        "another-users-id-with-a-bad-signature": lambda: ".".join(
            [header, b64(json.dumps(payload_of(owner, user_id=str(victim.pk))).encode()), signature]
        ),  # fmt: skip
        "unknown-user-signed-right": lambda: jwt.encode(
            payload_of(owner, user_id="987654321"), KEY, "HS256"
        ),
        "truncated-signature": lambda: good[:-4],
        "no-signature": lambda: f"{header}.{payload}.",
        "header-and-payload-only": lambda: f"{header}.{payload}",
        "truncated-in-the-payload": lambda: good[: len(header) + 10],
        "signature-of-another-token": lambda: ".".join(
            [header, payload, str(AccessToken.for_user(victim)).split(".")[2]]
        ),
    }
    return forged[case]()


CASES = [
    "wrong-key", "alg-none", "alg-None", "alg-none-with-the-real-signature",
    "hs512-with-the-right-key", "hs384-with-the-right-key", "rs256-with-an-attackers-key",
    "exp-in-the-past", "nbf-in-the-future", "iat-in-the-future", "no-exp", "no-jti",
    "no-token-type", "token-type-refresh", "refresh-typed-payload-signed-right",
    "another-users-id-with-a-bad-signature", "unknown-user-signed-right",
    "truncated-signature", "no-signature", "header-and-payload-only",
    "truncated-in-the-payload", "signature-of-another-token",
]  # fmt: skip


@pytest.fixture(params=CASES)
def forged(request: pytest.FixtureRequest, vendor: Vendor, other_vendor: Vendor) -> str:
    return forge(request.param, vendor.user, other_vendor.user)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_forged_token_is_closed_4001(
    daphne_server: SecurityServer, forged: str, no_traceback: Any
) -> None:
    for bearer in (False, True):
        async with daphne_server.connect(forged, bearer=bearer) as ws:
            assert await close_code(ws) == 4001


async def test_the_forging_helpers_make_working_tokens_when_not_forged(
    daphne_server: SecurityServer, vendor: Vendor
) -> None:
    """The same construction with the right key and claims is accepted: the cases above fail
    for what they change, not for how they are built."""
    token = hs256_with(KEY.encode(), payload_of(vendor.user))
    async with daphne_server.connect(token, bearer=True) as ws:
        assert (await receive_frame(ws))["action"] == "unread_notifications"


async def close_of(communicator: WebsocketCommunicator) -> Any:
    connected, _ = await communicator.connect()
    assert connected
    output = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return output


async def test_rs256_configured_refuses_hs256_signed_with_the_public_key(
    simple_jwt_settings: Callable[..., None], channel_layer: Any
) -> None:
    """The RS/HS confusion: with RS256 configured, an attacker who knows the public key signs
    HS256 with it as the HMAC secret. The algorithm list is the configured one only, so it is
    refused (in-process: it needs a server configured for RS256)."""
    private, public = pem(rsa_private_key())
    user = await make_vendor_owner()
    simple_jwt_settings(ALGORITHM="RS256", SIGNING_KEY=private.decode(), VERIFYING_KEY=public)

    confused = hs256_with(public, payload_of(user))
    assert await close_of(communicator_for(confused)) == {"type": "websocket.close", "code": 4001}
    genuine = communicator_for(str(AccessToken.for_user(user)))
    connected, _ = await genuine.connect()
    assert connected
    assert (await genuine.receive_json_from(timeout=5))["action"] == "unread_notifications"
    await genuine.disconnect()


@sync_to_async
def make_vendor_owner() -> Any:
    user = make_user()
    Vendor.objects.create(user=user, name="RS vendor")
    return user
