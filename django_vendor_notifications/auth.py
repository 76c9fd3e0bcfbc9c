"""JWT authentication for WebSocket connections, using simplejwt's own validation.

``JWTAuthentication().get_validated_token()`` honours ``SIMPLE_JWT`` (signing key, algorithm,
``AUTH_TOKEN_CLASSES`` - access tokens only by default, so a refresh token is refused) and
``get_user()`` honours ``USER_ID_CLAIM``/``USER_ID_FIELD`` and inactive users. The middleware
never closes a connection: it puts ``scope["user"]`` (``AnonymousUser`` when the token is
missing or bad) and the consumer accepts, then closes with 4001, so a browser sees the code.

The token is checked once, in the first thread hop that needs the user: the
NotificationConsumer's connect reads the user, the vendor and the inbox in a single hop; any
other consumer gets ``scope["user"]`` resolved before its first message, as Channels'
``AuthMiddleware`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.utils.functional import SimpleLazyObject
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError

from .conf import app_settings

#: The subprotocol a client offers, next to its token, to authenticate in the handshake header
#: instead of the URL (which ends up in access logs): ["bearer", "<access token>"].
BEARER_SUBPROTOCOL = "bearer"
#: Where the middleware records how the socket authenticated; read by the consumer.
SCOPE_KEY = "vendor_notifications"


@dataclass(frozen=True)
class Authentication:
    """Who a token belongs to and until when it is valid."""

    user: Any
    #: The token's "exp" claim (seconds since the epoch), or None without a valid token.
    expires_at: int | None = None


def token_from_scope(scope: dict[str, Any]) -> tuple[str | None, str | None]:
    """The access token of a handshake and the subprotocol to accept with.

    A client offering ``["bearer", token]`` as subprotocols is answered with ``bearer``; the
    ``?token=`` query parameter is the spec's way and can be turned off (QUERY_STRING_TOKEN).
    """
    subprotocols = list(scope.get("subprotocols") or [])
    if BEARER_SUBPROTOCOL in subprotocols:
        offered = [value for value in subprotocols if value != BEARER_SUBPROTOCOL]
        return (offered[0] if offered else None), BEARER_SUBPROTOCOL
    if not app_settings.QUERY_STRING_TOKEN:
        return None, None
    query_string = scope.get("query_string", b"")
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    values = parse_qs(query_string).get(app_settings.TOKEN_QUERY_PARAMETER)
    return (values[0] if values else None), None


def authenticate(raw_token: str | None) -> Authentication:
    """The active user an access token belongs to (AnonymousUser when it is not valid)."""
    if not raw_token:
        return Authentication(AnonymousUser())
    authentication = JWTAuthentication()
    try:
        validated_token = authentication.get_validated_token(raw_token.encode())
        expires_at = validated_token.get("exp")
        expires_at = int(expires_at) if expires_at is not None else None
    except DatabaseError:
        # The database is away (a token blacklist lookup): not the client's fault.
        raise
    except Exception:
        # simplejwt's own refusals, and whatever a token library raises reading claims that
        # are signed but absurd (an "exp" of 2**70 overflows a datetime): all a refusal.
        return Authentication(AnonymousUser())
    try:
        user = authentication.get_user(validated_token)
    except (TokenError, AuthenticationFailed):
        return Authentication(AnonymousUser())
    except (ValueError, TypeError, OverflowError, ValidationError):
        # A correctly signed token whose user id does not fit the user model's key.
        return Authentication(AnonymousUser())
    return Authentication(user, expires_at)


def user_for_token(raw_token: str | None) -> Any:
    """The active user an access token belongs to, or AnonymousUser."""
    return authenticate(raw_token).user


class Handshake:
    """A socket's token, checked on first use, and how the client offered it.

    ``scope[SCOPE_KEY]`` holds one; ``scope["user"]`` is its lazy ``user``. The check runs in
    whichever worker thread first reads the user (database access is not allowed on the
    event loop); the token is forgotten once checked, so nothing downstream can log it.
    """

    def __init__(self, raw_token: str | None, subprotocol: str | None) -> None:
        self._raw_token = raw_token
        self._result: Authentication | None = None
        self.subprotocol = subprotocol
        #: Set by a consumer that checks the token in its own thread hop (see the middleware).
        self.checked_by_consumer = False
        self.user = SimpleLazyObject(lambda: self.authentication().user)

    @property
    def checked(self) -> bool:
        return self._result is not None

    def authentication(self) -> Authentication:
        """Who the token belongs to; checks it the first time (may query the database)."""
        if self._result is None:
            self._result = authenticate(self._raw_token)
            self._raw_token = None
        return self._result

    @property
    def expires_at(self) -> int | None:
        """The token's "exp" claim once checked, else None."""
        return self._result.expires_at if self._result is not None else None


class JWTAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from the access token of a WebSocket handshake."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        handshake = Handshake(*token_from_scope(scope))
        scope[SCOPE_KEY] = handshake
        scope["user"] = handshake.user

        async def receive_after_check() -> Any:
            # Before the first message reaches the app, unless its consumer checks the token
            # itself (the NotificationConsumer does, together with its other connect queries).
            message = await receive()
            if not handshake.checked and not handshake.checked_by_consumer:
                await database_sync_to_async(handshake.authentication)()
            return message

        return await super().__call__(scope, receive_after_check, send)


async def resolve_user(scope: dict[str, Any]) -> Any:
    """``scope["user"]``, with its token checked: for code between the middleware and the
    consumer that needs the user before the first message (a logging middleware, say)."""
    handshake = scope.get(SCOPE_KEY)
    if isinstance(handshake, Handshake) and not handshake.checked:
        await database_sync_to_async(handshake.authentication)()
    return scope.get("user")


def JWTAuthMiddlewareStack(inner: Any) -> JWTAuthMiddleware:  # noqa: N802 - Channels' naming
    """Wrap ``inner`` (usually a URLRouter) in the app's JWT authentication."""
    return JWTAuthMiddleware(inner)
