"""JWT authentication for WebSocket connections, using simplejwt's own validation.

``JWTAuthentication().get_validated_token()`` honours ``SIMPLE_JWT`` (signing key, algorithm,
``AUTH_TOKEN_CLASSES`` - access tokens only by default, so a refresh token is refused) and
``get_user()`` honours ``USER_ID_CLAIM``/``USER_ID_FIELD`` and inactive users. The middleware
never closes a connection: it puts ``scope["user"]`` (``AnonymousUser`` when the token is
missing or bad) and the consumer accepts, then closes with 4001, so a browser sees the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
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
        user = authentication.get_user(validated_token)
    except (TokenError, AuthenticationFailed):
        return Authentication(AnonymousUser())
    except (ValueError, TypeError, ValidationError):
        # A correctly signed token whose user id does not fit the user model's key.
        return Authentication(AnonymousUser())
    expires_at = validated_token.get("exp")
    return Authentication(user, int(expires_at) if expires_at is not None else None)


def user_for_token(raw_token: str | None) -> Any:
    """The active user an access token belongs to, or AnonymousUser."""
    return authenticate(raw_token).user


class JWTAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from the access token of a WebSocket handshake."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        raw_token, subprotocol = token_from_scope(scope)
        result = await database_sync_to_async(authenticate)(raw_token)
        scope["user"] = result.user
        # The token itself is not kept: nothing downstream can log it.
        scope[SCOPE_KEY] = {"expires_at": result.expires_at, "subprotocol": subprotocol}
        return await super().__call__(scope, receive, send)


def JWTAuthMiddlewareStack(inner: Any) -> JWTAuthMiddleware:  # noqa: N802 - Channels' naming
    """Wrap ``inner`` (usually a URLRouter) in the app's JWT authentication."""
    return JWTAuthMiddleware(inner)
