"""JWT authentication for WebSocket connections, using simplejwt's own validation.

``JWTAuthentication().get_validated_token()`` honours ``SIMPLE_JWT`` (signing key, algorithm,
``AUTH_TOKEN_CLASSES`` - access tokens only by default, so a refresh token is refused) and
``get_user()`` honours ``USER_ID_CLAIM``/``USER_ID_FIELD`` and inactive users. The middleware
never closes a connection: it puts ``scope["user"]`` (``AnonymousUser`` when the token is
missing or bad) and the consumer accepts, then closes with 4001, so a browser sees the code.
"""

from __future__ import annotations

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


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """The access token from the query string (``?token=...`` by default), or None."""
    query_string = scope.get("query_string", b"")
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    values = parse_qs(query_string).get(app_settings.TOKEN_QUERY_PARAMETER)
    return values[0] if values else None


def user_for_token(raw_token: str | None) -> Any:
    """The active user an access token belongs to, or AnonymousUser."""
    if not raw_token:
        return AnonymousUser()
    authentication = JWTAuthentication()
    try:
        validated_token = authentication.get_validated_token(raw_token.encode())
        return authentication.get_user(validated_token)
    except (TokenError, AuthenticationFailed):
        return AnonymousUser()
    except (ValueError, TypeError, ValidationError):
        # A correctly signed token whose user id does not fit the user model's key.
        return AnonymousUser()


class JWTAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from the access token of a WebSocket handshake."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["user"] = await database_sync_to_async(user_for_token)(token_from_scope(scope))
        return await super().__call__(scope, receive, send)


def JWTAuthMiddlewareStack(inner: Any) -> JWTAuthMiddleware:  # noqa: N802 - Channels' naming
    """Wrap ``inner`` (usually a URLRouter) in the app's JWT authentication."""
    return JWTAuthMiddleware(inner)
