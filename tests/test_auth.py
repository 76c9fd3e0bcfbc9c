"""JWT authentication of the handshake: simplejwt's validation, AnonymousUser on any failure."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import AccessToken

from django_vendor_notifications.auth import (
    SCOPE_KEY,
    Handshake,
    JWTAuthMiddleware,
    JWTAuthMiddlewareStack,
    resolve_user,
    token_from_scope,
    user_for_token,
)
from tests.conftest import access_token_for, make_user, refresh_token_for, vendor_settings

pytestmark = pytest.mark.django_db


def signed_with(payload: dict[str, Any], key: str = settings.SECRET_KEY) -> str:
    return jwt.encode(payload, key, algorithm="HS256")


def is_anonymous(user: Any) -> bool:
    return isinstance(user, AnonymousUser) and not user.is_authenticated


def test_valid_access_token(owner: Any) -> None:
    user = user_for_token(access_token_for(owner))
    assert user == owner
    assert user.is_authenticated


@pytest.mark.parametrize(
    "raw",
    [None, "", "abc", "a.b.c", "Bearer x", "ü", "eyJhbGciOiJIUzI1NiJ9.e30", "." * 3],
)
def test_missing_or_malformed(raw: str | None, owner: Any) -> None:
    assert is_anonymous(user_for_token(raw))


def test_wrong_signature_with_simplejwt(owner: Any) -> None:
    payload = AccessToken.for_user(owner).payload
    other_backend = TokenBackend("HS256", "another-signing-key-that-is-long-enough!!")
    assert is_anonymous(user_for_token(other_backend.encode(payload)))


def test_wrong_signature_with_pyjwt(owner: Any) -> None:
    payload = dict(AccessToken.for_user(owner).payload)
    assert is_anonymous(user_for_token(signed_with(payload, "x" * 40)))
    # The same payload with the right key is accepted: only the key differs.
    assert user_for_token(signed_with(payload)) == owner


def test_tampered_payload(owner: Any, customer: Any) -> None:
    header, _, signature = access_token_for(customer).split(".")
    _, payload, _ = access_token_for(owner).split(".")
    assert is_anonymous(user_for_token(f"{header}.{payload}.{signature}"))


def test_expired(owner: Any) -> None:
    token = AccessToken.for_user(owner)
    token.set_exp(lifetime=-datetime.timedelta(seconds=30))
    assert is_anonymous(user_for_token(str(token)))


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 2**70},
        {"exp": 1e18},
        {"exp": -(2**70)},
        {"exp": "tomorrow"},
        {"exp": None},
        {"iat": 2**70},
        {"user_id": 2**70},
        {"user_id": [1]},
        {"user_id": {"pk": 1}},
        {"token_type": ["access"]},
    ],
    ids=repr,
)
def test_validly_signed_absurd_claims_are_a_refusal_not_an_error(
    owner: Any, claims: dict[str, Any]
) -> None:
    """Whatever a token library raises reading claims that someone signed must end as a
    refusal (4001), never as an exception in the handshake (HTTP 500)."""
    payload = {**AccessToken.for_user(owner).payload, **claims}
    assert is_anonymous(user_for_token(signed_with(payload)))


def test_refresh_token_is_not_an_access_token(owner: Any) -> None:
    assert is_anonymous(user_for_token(refresh_token_for(owner)))


def test_deleted_user(db: Any) -> None:
    user = make_user()
    token = access_token_for(user)
    user.delete()
    assert is_anonymous(user_for_token(token))


def test_inactive_user(db: Any) -> None:
    user = make_user()
    token = access_token_for(user)
    user.is_active = False
    user.save()
    assert is_anonymous(user_for_token(token))


def test_alg_none(owner: Any) -> None:
    payload = dict(AccessToken.for_user(owner).payload)
    unsigned = jwt.encode(payload, None, algorithm="none")
    assert jwt.get_unverified_header(unsigned)["alg"] == "none"
    assert is_anonymous(user_for_token(unsigned))


# The short key is the point here: the test key is meant for HS256.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_algorithm_with_the_right_key(owner: Any) -> None:
    payload = dict(AccessToken.for_user(owner).payload)
    token = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS512")
    assert is_anonymous(user_for_token(token))


@pytest.mark.parametrize("user_id", ["not-a-number", [1], {"id": 1}, None])
def test_signed_token_with_unusable_user_id(owner: Any, user_id: Any) -> None:
    payload = {**AccessToken.for_user(owner).payload, "user_id": user_id}
    assert is_anonymous(user_for_token(signed_with(payload)))


def test_signed_token_without_user_id(owner: Any) -> None:
    payload = dict(AccessToken.for_user(owner).payload)
    del payload["user_id"]
    assert is_anonymous(user_for_token(signed_with(payload)))


def test_user_id_claim_override(owner: Any, simple_jwt_settings: Callable[..., None]) -> None:
    default_token = access_token_for(owner)
    simple_jwt_settings(USER_ID_CLAIM="uid")
    token = AccessToken.for_user(owner)
    assert str(token["uid"]) == str(owner.pk)
    assert "user_id" not in token.payload
    assert user_for_token(str(token)) == owner
    # A token carrying the id under the default claim no longer names a user.
    assert is_anonymous(user_for_token(default_token))


def test_user_id_claim_override_is_undone(
    owner: Any, simple_jwt_settings: Callable[..., None]
) -> None:
    # Guards the fixture: a leaked override would break every later test.
    simple_jwt_settings(USER_ID_CLAIM="uid")
    assert "uid" in AccessToken.for_user(owner).payload


def test_user_id_claim_default_after_override(owner: Any) -> None:
    assert "user_id" in AccessToken.for_user(owner).payload
    assert user_for_token(access_token_for(owner)) == owner


# --- token_from_scope and the middleware -------------------------------------------------


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        (b"", None),
        (b"token=abc", "abc"),
        (b"a=1&token=abc&b=2", "abc"),
        (b"token=a%2Bb%3D", "a+b="),
        (b"token=first&token=second", "first"),
        (b"tokens=abc", None),
        ("token=text", "text"),
    ],
)
def test_token_from_scope(query_string: bytes | str, expected: str | None) -> None:
    assert token_from_scope({"query_string": query_string}) == (expected, None)


def test_token_from_scope_without_query_string() -> None:
    assert token_from_scope({}) == (None, None)


def test_custom_token_query_parameter() -> None:
    with vendor_settings(TOKEN_QUERY_PARAMETER="access"):
        assert token_from_scope({"query_string": b"access=abc"}) == ("abc", None)
        assert token_from_scope({"query_string": b"token=abc"}) == (None, None)


@pytest.mark.parametrize(
    ("subprotocols", "expected"),
    [
        (["bearer", "abc"], ("abc", "bearer")),
        (["abc", "bearer"], ("abc", "bearer")),
        # Only "bearer": the client asked for header authentication but sent no token.
        (["bearer"], (None, "bearer")),
        (["bearer", "bearer"], (None, "bearer")),
        (["bearer", "first", "second"], ("first", "bearer")),
    ],
)
def test_token_from_subprotocols(subprotocols: list[str], expected: tuple[Any, Any]) -> None:
    assert token_from_scope({"subprotocols": subprotocols}) == expected


def test_bearer_subprotocol_wins_over_the_query_string() -> None:
    scope = {"subprotocols": ["bearer", "header"], "query_string": b"token=query"}
    assert token_from_scope(scope) == ("header", "bearer")


def test_other_subprotocols_fall_back_to_the_query_string() -> None:
    scope = {"subprotocols": ["graphql-ws", "abc"], "query_string": b"token=query"}
    assert token_from_scope(scope) == ("query", None)


def test_query_string_token_can_be_turned_off() -> None:
    with vendor_settings(QUERY_STRING_TOKEN=False):
        assert token_from_scope({"query_string": b"token=query"}) == (None, None)
        assert token_from_scope({"subprotocols": ["bearer", "abc"]}) == ("abc", "bearer")


class ScopeRecorder:
    """An inner ASGI app that keeps the scope it was called with and reads its first message,
    as a consumer does before connect()."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] | None = None
        self.first_message: dict[str, Any] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self.first_message = await receive()


async def websocket_connect() -> dict[str, Any]:
    return {"type": "websocket.connect"}


async def scope_through_middleware(scope: dict[str, Any]) -> dict[str, Any]:
    inner = ScopeRecorder()
    await JWTAuthMiddleware(inner)(scope, websocket_connect, None)
    assert inner.scope is not None
    assert inner.first_message == {"type": "websocket.connect"}
    # The middleware copies the scope instead of changing the server's.
    assert "user" not in scope
    return inner.scope


async def user_through_middleware(query_string: bytes) -> Any:
    scope = {"type": "websocket", "path": "/", "query_string": query_string}
    return (await scope_through_middleware(scope))["user"]


@pytest.mark.django_db(transaction=True)
async def test_middleware_sets_user(owner: Any) -> None:
    token = access_token_for(owner)
    user = await user_through_middleware(f"token={token}".encode())
    assert user.pk == owner.pk
    assert is_anonymous(await user_through_middleware(b""))
    assert is_anonymous(await user_through_middleware(f"token={token}x".encode()))


@pytest.mark.django_db(transaction=True)
async def test_middleware_uses_custom_token_query_parameter(owner: Any) -> None:
    token = access_token_for(owner)
    with vendor_settings(TOKEN_QUERY_PARAMETER="access"):
        assert (await user_through_middleware(f"access={token}".encode())).pk == owner.pk
        assert is_anonymous(await user_through_middleware(f"token={token}".encode()))


@pytest.mark.django_db(transaction=True)
async def test_middleware_records_expiry_and_subprotocol_not_the_token(owner: Any) -> None:
    token = AccessToken.for_user(owner)
    scope = {"type": "websocket", "path": "/", "subprotocols": ["bearer", str(token)]}
    handshake = (await scope_through_middleware(scope))[SCOPE_KEY]
    assert isinstance(handshake, Handshake)
    assert handshake.user.pk == owner.pk
    assert (handshake.expires_at, handshake.subprotocol) == (token["exp"], "bearer")
    # Checked and forgotten: nothing downstream can log it.
    assert str(token) not in repr(vars(handshake))


@pytest.mark.django_db(transaction=True)
async def test_a_consumer_may_check_the_token_in_its_own_thread_hop(owner: Any) -> None:
    """The NotificationConsumer reads the user together with the rest of its connect: the
    middleware then spends no thread hop (and no query) of its own."""

    class ChecksItself(ScopeRecorder):
        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope[SCOPE_KEY].checked_by_consumer = True
            await super().__call__(scope, receive, send)

    inner = ChecksItself()
    scope = {
        "type": "websocket",
        "path": "/",
        "query_string": b"token=" + access_token_for(owner).encode(),
    }
    await JWTAuthMiddleware(inner)(scope, websocket_connect, None)
    assert inner.scope is not None
    handshake = inner.scope[SCOPE_KEY]
    assert handshake.checked is False
    assert handshake.expires_at is None
    user = await database_sync_to_async(lambda: inner.scope["user"].pk)()  # type: ignore[index]
    assert user == owner.pk
    assert handshake.checked is True


@pytest.mark.django_db(transaction=True)
async def test_resolve_user_checks_the_token_for_code_before_the_consumer(owner: Any) -> None:
    seen: list[Any] = []

    async def logging_middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(await resolve_user(scope))

    scope = {
        "type": "websocket",
        "path": "/",
        "query_string": b"token=" + access_token_for(owner).encode(),
    }
    await JWTAuthMiddleware(logging_middleware)(scope, websocket_connect, None)
    assert [user.pk for user in seen] == [owner.pk]
    assert is_anonymous(await resolve_user({"user": AnonymousUser()}))


def test_middleware_stack_wraps_inner() -> None:
    inner = ScopeRecorder()
    stack = JWTAuthMiddlewareStack(inner)
    assert isinstance(stack, JWTAuthMiddleware)
    assert stack.inner is inner
