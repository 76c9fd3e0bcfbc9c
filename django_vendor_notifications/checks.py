"""System checks: a wrong setting fails at ``manage.py check``, not at the first connection.

Ids are stable (``django_vendor_notifications.E001`` ...) and documented in docs/settings.md.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import re
import string
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import DEFAULTS, SETTINGS_NAME, app_settings

ID = "django_vendor_notifications.{}"
# Channels accepts group names of ASCII letters, digits, hyphens, underscores and periods.
GROUP_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,99}$")


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    errors += _check_shape()
    if errors:
        return errors
    errors += _check_vendor_model()
    errors += _check_access_policy()
    errors += _check_group_names()
    errors += _check_numbers()
    errors += _check_formats()
    errors += _check_channel_layer()
    errors += _check_booleans()
    errors += _check_rest_api()
    errors += _check_preferences()
    errors += _check_digests()
    errors += _check_seen_and_snooze()
    return errors


def _error(number: int, message: str, hint: str | None = None) -> Error:
    return Error(message, hint=hint, id=ID.format(f"E{number:03d}"))


def _check_shape() -> list[CheckMessage]:
    value = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(value, dict):
        return [
            _error(
                1,
                f"{SETTINGS_NAME} must be a dict with at least 'VENDOR_MODEL'.",
                hint=f'{SETTINGS_NAME} = {{"VENDOR_MODEL": "yourapp.Vendor"}}',
            )
        ]
    unknown = sorted(set(value) - set(DEFAULTS), key=str)
    return [
        _error(
            2,
            f"{SETTINGS_NAME} has an unknown key: {key!r}.",
            hint=_nearest_key_hint(key),
        )
        for key in unknown
    ]


def _nearest_key_hint(key: Any) -> str:
    nearest = difflib.get_close_matches(str(key), DEFAULTS, n=1, cutoff=0.6)
    if nearest:
        return f"Did you mean {nearest[0]!r}?"
    return f"See the {len(DEFAULTS)} known keys in docs/settings.md."


def _check_vendor_model() -> list[CheckMessage]:
    from .permissions import get_vendor_model

    try:
        vendor_model = get_vendor_model()
    except ImproperlyConfigured as exc:
        return [_error(3, str(exc))]
    errors: list[CheckMessage] = []
    owner_key = app_settings.VENDOR_OWNER_FIELD
    try:
        owner_field = vendor_model._meta.get_field(owner_key)
    except FieldDoesNotExist:
        owner_field = None
    if owner_field is None or not (owner_field.many_to_one or owner_field.one_to_one):
        errors.append(
            _error(
                4,
                f"{app_settings.setting_name('VENDOR_OWNER_FIELD')} = {owner_key!r} is not a "
                f"foreign key or one-to-one field of {vendor_model._meta.label}.",
            )
        )
    for key in ("VENDOR_STAFF_LOOKUP", "STAFF_PERMISSION_LOOKUP"):
        lookup = app_settings.get(key)
        if not lookup:
            continue
        try:
            # Building the SQL resolves every part of the lookup without touching the database.
            str(vendor_model._default_manager.filter(**{lookup: 1}).query)
        except (FieldError, ValueError, TypeError) as exc:
            errors.append(
                _error(
                    5,
                    f"{app_settings.setting_name(key)} = {lookup!r} is not a valid "
                    f"lookup from {vendor_model._meta.label}: {exc}",
                )
            )
    if app_settings.STAFF_PERMISSION_LOOKUP and not app_settings.VENDOR_STAFF_LOOKUP:
        errors.append(
            _error(
                5,
                f"{app_settings.setting_name('STAFF_PERMISSION_LOOKUP')} needs "
                f"{app_settings.setting_name('VENDOR_STAFF_LOOKUP')} as well.",
            )
        )
    return errors


def _check_access_policy() -> list[CheckMessage]:
    try:
        policy_class = app_settings.import_setting("ACCESS_POLICY")
    except ImproperlyConfigured as exc:
        return [_error(6, str(exc))]
    missing = [
        name
        for name in ("get_vendor", "can_access")
        if not callable(getattr(policy_class, name, None))
    ]
    if not isinstance(policy_class, type) or missing:
        return [
            _error(
                6,
                f"{app_settings.setting_name('ACCESS_POLICY')} must name a class with "
                "get_vendor(user) and can_access(user, vendor) methods.",
                hint="Subclass django_vendor_notifications.permissions.VendorAccessPolicy.",
            )
        ]
    return []


def _placeholders(template: str) -> set[str] | None:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        return None


def _check_group_names() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    templates = {"USER_GROUP": "user_id", "VENDOR_GROUP": "vendor_id", "BROADCAST_GROUP": None}
    for key, placeholder in templates.items():
        template = app_settings.get(key)
        expected = {placeholder} if placeholder else set()
        names = _placeholders(template) if isinstance(template, str) else None
        sample = template.format(user_id=1, vendor_id=1) if names == expected else ""
        if names != expected or not GROUP_NAME.match(sample):
            wanted = f"the placeholder {{{placeholder}}}" if placeholder else "no placeholder"
            errors.append(
                _error(
                    7,
                    f"{app_settings.setting_name(key)} = {template!r} must be a group name with "
                    f"{wanted}, made of ASCII letters, digits, '-', '_' and '.'.",
                )
            )
    return errors


def _check_numbers() -> list[CheckMessage]:
    errors: list[CheckMessage] = []

    def refuse(key: str, kind: str) -> None:
        value = app_settings.get(key)
        errors.append(
            _error(8, f"{app_settings.setting_name(key)} must be {kind} (got {value!r}).")
        )

    for key in (
        "UNREAD_LIMIT",
        "PAGE_SIZE",
        "MAX_PAGE_SIZE",
        "SYNC_LIMIT",
        "MAX_MESSAGE_BYTES",
        "RATE_LIMIT_BURST",
        "MAX_SOCKETS_PER_USER",
        "SOCKET_QUEUE_FRAMES",
        "SOCKET_QUEUE_BYTES",
    ):
        value = app_settings.get(key)
        if type(value) is not int or value < 1:
            refuse(key, "a positive integer")
    # 0 is meaningful: close at the first rejected message.
    value = app_settings.get("RATE_LIMIT_CLOSE_AFTER")
    if type(value) is not int or value < 0:
        refuse("RATE_LIMIT_CLOSE_AFTER", "an integer >= 0")
    for key in ("PUBLISH_TIMEOUT", "LAYER_TIMEOUT"):
        if not _is_number(app_settings.get(key), minimum=0, inclusive=False):
            refuse(key, "a positive number of seconds")
    if not _is_number(app_settings.get("RATE_LIMIT_PER_SECOND"), minimum=0, inclusive=False):
        refuse("RATE_LIMIT_PER_SECOND", "a positive number")
    for key in ("TOKEN_EXPIRY_GRACE", "GROUP_LINGER"):
        if not _is_number(app_settings.get(key), minimum=0, inclusive=True):
            refuse(key, "a number of seconds >= 0")
    for key in ("REVALIDATE_INTERVAL", "LAYER_CHECK_INTERVAL", "DATABASE_TIMEOUT"):
        interval = app_settings.get(key)
        if interval is not None and not _is_number(interval, minimum=0, inclusive=False):
            refuse(key, "None or a positive number of seconds")
    pending = app_settings.get("MAX_PENDING_CONNECTS")
    if pending is not None and (type(pending) is not int or pending < 1):
        refuse("MAX_PENDING_CONNECTS", "None or a positive integer")
    drain = app_settings.get("DRAIN_SECONDS")
    if drain is not None and not _is_number(drain, minimum=0, inclusive=True):
        refuse("DRAIN_SECONDS", "None or a number of seconds >= 0")
    # Whole days: a fraction would read as "keep everything" after int() in the command.
    retention = app_settings.get("RETENTION_DAYS")
    if retention is not None and (type(retention) is not int or retention < 1):
        refuse("RETENTION_DAYS", "None or a positive whole number of days")
    return errors


def _check_booleans() -> list[CheckMessage]:
    # A truthy string such as "false" would silently turn a flag on.
    errors: list[CheckMessage] = []
    for key, number in (("ISO_TIMESTAMPS", 11), ("COLLAPSE", 20)):
        value = app_settings.get(key)
        if not isinstance(value, bool):
            errors.append(
                _error(
                    number,
                    f"{app_settings.setting_name(key)} must be True or False (got {value!r}).",
                )
            )
    return errors


def _check_rest_api() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    key = "REST_AUTHENTICATION_CLASSES"
    paths = app_settings.get(key)
    if isinstance(paths, str) or not isinstance(paths, (list, tuple)):
        errors.append(
            _error(12, f"{app_settings.setting_name(key)} must be a list of dotted paths.")
        )
    else:
        for path in paths:
            try:
                if not isinstance(path, str):
                    raise ImproperlyConfigured(
                        f"{app_settings.setting_name(key)} holds {path!r}, not a dotted path."
                    )
                app_settings.import_path(key, path)
            except ImproperlyConfigured as exc:
                errors.append(_error(12, str(exc)))
    key = "REST_THROTTLE_RATES"
    rates = app_settings.get(key)
    if rates is None:
        return errors
    if not isinstance(rates, dict):
        return [*errors, _error(12, f"{app_settings.setting_name(key)} must be a dict or None.")]
    for scope, rate in rates.items():
        if rate is not None and not _is_rate(rate):
            errors.append(
                _error(
                    12,
                    f"{app_settings.setting_name(key)}[{scope!r}] must be a rate such as "
                    f"'100/min' or None (got {rate!r}).",
                )
            )
    return errors


def _check_seen_and_snooze() -> list[CheckMessage]:
    """E023: SEEN or SNOOZE is not a bool (a string such as "false" would turn it on).
    E024: SNOOZE_MAX is not a positive datetime.timedelta."""
    import datetime

    errors: list[CheckMessage] = []
    for key in ("SEEN", "SNOOZE"):
        value = app_settings.get(key)
        if not isinstance(value, bool):
            name = app_settings.setting_name(key)
            errors.append(_error(23, f"{name} must be True or False (got {value!r})."))
    limit = app_settings.get("SNOOZE_MAX")
    if not isinstance(limit, datetime.timedelta) or limit <= datetime.timedelta(0):
        errors.append(
            _error(
                24,
                f"{app_settings.setting_name('SNOOZE_MAX')} must be a positive "
                f"datetime.timedelta (got {limit!r}).",
                hint="For example datetime.timedelta(days=30).",
            )
        )
    return errors


def _check_preferences() -> list[CheckMessage]:
    from .models import DELIVERY_VALUES

    errors: list[CheckMessage] = []

    def refuse(key: str, message: str) -> None:
        errors.append(_error(15, f"{app_settings.setting_name(key)} {message}"))

    if not isinstance(app_settings.get("PREFERENCES"), bool):
        refuse("PREFERENCES", f"must be True or False (got {app_settings.get('PREFERENCES')!r}).")
    categories = app_settings.get("CATEGORIES")
    known = set(categories) if isinstance(categories, (list, tuple)) else None

    def unknown(label: Any) -> bool:
        return not isinstance(label, str) or not label or (known is not None and label not in known)

    unmutable = app_settings.get("UNMUTABLE_CATEGORIES")
    if isinstance(unmutable, str) or not isinstance(unmutable, (list, tuple, set, frozenset)):
        refuse("UNMUTABLE_CATEGORIES", "must be a list of category labels.")
        unmutable = ()
    elif any(unknown(label) for label in unmutable):
        refuse("UNMUTABLE_CATEGORIES", "must hold category labels (of CATEGORIES, when set).")
    defaults = app_settings.get("PREFERENCE_DEFAULTS")
    values = list(DELIVERY_VALUES)
    if not isinstance(defaults, dict):
        refuse("PREFERENCE_DEFAULTS", "must be a dict of category labels to a preference.")
        return errors
    for label, value in defaults.items():
        if unknown(label):
            refuse("PREFERENCE_DEFAULTS", f"names {label!r}, not a category label.")
        elif value not in values:
            refuse("PREFERENCE_DEFAULTS", f"[{label!r}] must be one of {values} (got {value!r}).")
        elif label in unmutable and value != "live":
            refuse("PREFERENCE_DEFAULTS", f"[{label!r}] must be 'live': it cannot be muted.")
    return errors


def _check_digests() -> list[CheckMessage]:
    import datetime

    errors: list[CheckMessage] = []
    enabled = app_settings.get("DIGESTS")
    if not isinstance(enabled, bool):
        errors.append(
            _error(
                16,
                f"{app_settings.setting_name('DIGESTS')} must be True or False (got {enabled!r}).",
            )
        )
    raw_after = after = app_settings.get("DIGEST_AFTER")
    if isinstance(after, datetime.timedelta):
        after = after.total_seconds()
    if not _is_number(after, minimum=0, inclusive=False):
        errors.append(
            _error(
                16,
                f"{app_settings.setting_name('DIGEST_AFTER')} must be a positive number of "
                f"seconds or a positive datetime.timedelta (got {raw_after!r}).",
            )
        )
        after = None
    items = app_settings.get("DIGEST_MAX_ITEMS")
    if type(items) is not int or items < 1:
        errors.append(
            _error(
                18,
                f"{app_settings.setting_name('DIGEST_MAX_ITEMS')} must be a positive integer "
                f"(got {items!r}).",
            )
        )
    sender = app_settings.get("DIGEST_FROM_EMAIL")
    if sender is not None and (not isinstance(sender, str) or not sender.strip()):
        errors.append(
            _error(
                19,
                f"{app_settings.setting_name('DIGEST_FROM_EMAIL')} must be None or an email "
                f"address (got {sender!r}).",
            )
        )
    if enabled is True and after is not None:
        errors += _check_digest_presence(after)
    return errors


def _check_digest_presence(after: float) -> list[CheckMessage]:
    """An open socket refreshes its user's presence every REVALIDATE_INTERVAL: DIGEST_AFTER
    must be longer, or a user with a socket open could look away and get an email."""
    interval = app_settings.get("REVALIDATE_INTERVAL")
    if interval is None or not _is_number(interval, minimum=0, inclusive=False):
        return [
            _error(
                17,
                f"{app_settings.setting_name('DIGESTS')} is on but "
                f"{app_settings.setting_name('REVALIDATE_INTERVAL')} is None: an open socket "
                "would never refresh its user's presence, so a user reading their "
                "notifications live would be emailed them.",
                hint="Set REVALIDATE_INTERVAL to a number of seconds shorter than DIGEST_AFTER.",
            )
        ]
    if after <= interval:
        return [
            _error(
                17,
                f"{app_settings.setting_name('DIGEST_AFTER')} ({after:g} s) must be longer "
                f"than {app_settings.setting_name('REVALIDATE_INTERVAL')} ({interval:g} s), "
                "which is how often an open socket refreshes its user's presence.",
            )
        ]
    if after < 2 * interval:
        return [
            Warning(
                f"{app_settings.setting_name('DIGEST_AFTER')} ({after:g} s) is less than twice "
                f"{app_settings.setting_name('REVALIDATE_INTERVAL')} ({interval:g} s): a "
                "refresh delayed by a busy server or a database hiccup could make a user with "
                "an open socket look away.",
                hint="Make DIGEST_AFTER at least twice REVALIDATE_INTERVAL.",
                id=ID.format("W004"),
            )
        ]
    return []


def _is_rate(rate: Any) -> bool:
    from rest_framework.throttling import SimpleRateThrottle

    try:
        requests, _ = SimpleRateThrottle.parse_rate(None, rate)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError):
        return False
    return requests is not None and requests > 0


def _is_number(value: Any, *, minimum: float, inclusive: bool) -> bool:
    # bool is an int in Python, and NaN or infinity would silently disable a limit or timer.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not math.isfinite(value):
        return False
    return value >= minimum if inclusive else value > minimum


def _check_formats() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key in ("DATETIME_FORMAT", "DEFAULT_CATEGORY", "WEBSOCKET_PATH", "TOKEN_QUERY_PARAMETER"):
        value = app_settings.get(key)
        if not isinstance(value, str) or not value:
            errors.append(
                _error(9, f"{app_settings.setting_name(key)} must be a non-empty string.")
            )
    categories = app_settings.get("CATEGORIES")
    if categories is not None:
        if isinstance(categories, str) or not all(isinstance(c, str) and c for c in categories):
            errors.append(
                _error(
                    9,
                    f"{app_settings.setting_name('CATEGORIES')} must be None or a list of "
                    "category labels.",
                )
            )
        elif app_settings.get("DEFAULT_CATEGORY") not in categories:
            errors.append(
                _error(
                    9,
                    f"{app_settings.setting_name('DEFAULT_CATEGORY')} must be one of "
                    f"{app_settings.setting_name('CATEGORIES')}.",
                )
            )
    return errors


def _check_channel_layer() -> list[CheckMessage]:
    alias = app_settings.get("CHANNEL_LAYER")
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if alias in layers:
        return _check_redis_timeouts(layers[alias])
    return [
        _error(
            10,
            f"{app_settings.setting_name('CHANNEL_LAYER')} = {alias!r} is not a key of "
            "CHANNEL_LAYERS, so notifications cannot be pushed.",
            hint='Configure CHANNEL_LAYERS, e.g. {"default": '
            "django_vendor_notifications.layers.redis_channel_layer(REDIS_URL)}.",
        )
    ]


# channels-redis's receive blocks on Redis for this many seconds at a time.
REDIS_BLOCKING_RECEIVE = 5


def _check_redis_timeouts(layer: dict[str, Any]) -> list[CheckMessage]:
    """redis-py 8 times out an idle blocking receive unless socket_timeout is above 5 s."""
    if layer.get("BACKEND") != "channels_redis.core.RedisChannelLayer":
        return []
    hosts = (layer.get("CONFIG") or {}).get("hosts") or [None]
    short = [
        host
        for host in hosts
        if not isinstance(host, dict)
        or not isinstance(host.get("socket_timeout"), (int, float))
        or host["socket_timeout"] <= REDIS_BLOCKING_RECEIVE
    ]
    if not short:
        return []
    return [
        Warning(
            "A channels-redis host has no socket_timeout above 5 seconds: with redis-py 8 an "
            "idle notification socket's receive times out and the socket is closed (4013).",
            hint="Use django_vendor_notifications.layers.redis_channel_layer(url), or give "
            'each host as {"address": url, "socket_timeout": 30}.',
            id=ID.format("W001"),
        )
    ]


@register(Tags.security)
def check_origin_policy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Production settings under which the origin validator lets in any web page."""
    if settings.DEBUG or "*" not in settings.ALLOWED_HOSTS:
        return []
    return [
        Warning(
            'ALLOWED_HOSTS contains "*" while DEBUG is off, so AllowedHostsOriginValidator '
            "accepts a WebSocket handshake from any web page: a foreign site can open a "
            "socket with a visitor's browser (cross-site WebSocket hijacking).",
            hint="List your host names in ALLOWED_HOSTS, or wrap the socket in "
            "django_vendor_notifications.origins.OriginValidator(app, [your origins]).",
            id=ID.format("W002"),
        )
    ]


@register()
def check_asgi_application(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The notification socket must sit behind the app's JWT stack, not Channels' session one.

    Behind Channels' ``AuthMiddlewareStack`` every socket is anonymous, so a valid token is
    closed with 4001 and a client following the docs refreshes its token forever.
    """
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(path, str) or not path:
        return []
    try:
        application = import_string(path)
    except Exception:
        # A broken asgi.py is reported by runserver and the ASGI server, with its traceback.
        return []
    from .auth import JWTAuthMiddleware

    errors: list[CheckMessage] = []
    for chain in _paths_to_consumer(application):
        names = [f"{type(layer).__module__}.{type(layer).__qualname__}" for layer in chain]
        if any(name == "channels.auth.AuthMiddleware" for name in names):
            errors.append(
                _error(
                    13,
                    f"{path} wraps the notification socket in Channels' AuthMiddlewareStack: "
                    "it reads the session, not the token, so every valid token is closed "
                    "with 4001.",
                    hint="Wrap the URLRouter in "
                    "django_vendor_notifications.auth.JWTAuthMiddlewareStack instead "
                    "(docs/installation.md, step 6).",
                )
            )
        elif not any(isinstance(layer, JWTAuthMiddleware) for layer in chain):
            errors.append(
                _error(
                    13,
                    f"{path} routes to the notification socket without "
                    "JWTAuthMiddlewareStack, so every token is refused with 4001.",
                    hint="Wrap the URLRouter in "
                    "django_vendor_notifications.auth.JWTAuthMiddlewareStack "
                    "(docs/installation.md, step 6).",
                )
            )
    return errors[:1]


# Where Channels' and this app's wrappers keep the application they wrap.
_INNER_ATTRIBUTES = ("inner", "application", "app")


def _paths_to_consumer(application: Any) -> list[list[Any]]:
    """Every chain of wrappers from ``application`` down to the NotificationConsumer."""
    from .consumers import NotificationConsumer

    found: list[list[Any]] = []
    seen: set[int] = set()

    def walk(node: Any, chain: list[Any]) -> None:
        if node is None or id(node) in seen or len(chain) > 50:
            return
        seen.add(id(node))
        consumer = getattr(node, "consumer_class", None)
        if isinstance(consumer, type) and issubclass(consumer, NotificationConsumer):
            found.append(chain)
            return
        mapping = getattr(node, "application_mapping", None)
        if isinstance(mapping, dict):
            # Only the websocket side of a ProtocolTypeRouter leads to the socket.
            walk(mapping.get("websocket"), chain)
            return
        routes = getattr(node, "routes", None) or getattr(node, "url_patterns", None)
        if isinstance(routes, (list, tuple)):
            for route in routes:
                walk(getattr(route, "callback", None) or route, [*chain, node])
            return
        for attribute in _INNER_ATTRIBUTES:
            inner = getattr(node, attribute, None)
            if inner is not None and not isinstance(inner, (str, bytes, int, float)):
                walk(inner, [*chain, node])

    walk(application, [])
    return found


@register()
def check_runserver_serves_websockets(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """In development, ``runserver`` is daphne's only when daphne comes first in INSTALLED_APPS."""
    if not settings.DEBUG or not getattr(settings, "ASGI_APPLICATION", None):
        return []
    from django.core.management import get_commands

    if get_commands().get("runserver") == "daphne":
        return []
    return [
        Warning(
            "`manage.py runserver` is Django's own, which does not serve WebSockets: the "
            "notification socket answers 404 under runserver.",
            hint='Install the "daphne" extra and put "daphne" first in INSTALLED_APPS (before '
            "django.contrib.staticfiles). If you develop with another ASGI server (uvicorn), "
            'add "django_vendor_notifications.W003" to SILENCED_SYSTEM_CHECKS.',
            id=ID.format("W003"),
        )
    ]


# simplejwt's algorithms that verify with a public key (the rest are HMAC with SIGNING_KEY).
_ASYMMETRIC_ALGORITHM = re.compile(r"^(RS|PS|ES)\d+$|^EdDSA$")


@register()
def check_simple_jwt_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """An asymmetric SIMPLE_JWT algorithm needs a verifying key (or a JWKS URL) to check tokens."""
    simple_jwt = getattr(settings, "SIMPLE_JWT", None) or {}
    if not isinstance(simple_jwt, dict):
        return []
    algorithm = simple_jwt.get("ALGORITHM", "HS256")
    if not isinstance(algorithm, str) or not _ASYMMETRIC_ALGORITHM.match(algorithm):
        return []
    if not simple_jwt.get("VERIFYING_KEY") and not simple_jwt.get("JWK_URL"):
        return [
            _error(
                14,
                f'SIMPLE_JWT["ALGORITHM"] is {algorithm!r} but SIMPLE_JWT has neither '
                '"VERIFYING_KEY" nor "JWK_URL": no token can be verified, and every socket '
                "handshake and API request fails.",
                hint='Set SIMPLE_JWT["VERIFYING_KEY"] to the PEM public key (and '
                '"SIGNING_KEY" to the private key where tokens are issued), or '
                '"JWK_URL", or use an HMAC algorithm such as "HS256".',
            )
        ]
    if importlib.util.find_spec("cryptography") is None:
        return [
            _error(
                14,
                f'SIMPLE_JWT["ALGORITHM"] is {algorithm!r}, which needs the "cryptography" '
                "package, and it is not installed.",
                hint='pip install "pyjwt[crypto]"',
            )
        ]
    return []
