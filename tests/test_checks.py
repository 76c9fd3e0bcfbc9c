"""Each system check id is triggered by a wrong setting; the test settings pass them all."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import override_settings

from django_vendor_notifications.checks import (
    _paths_to_consumer,
    check_asgi_application,
    check_origin_policy,
    check_runserver_serves_websockets,
    check_settings,
    check_simple_jwt_keys,
)
from django_vendor_notifications.conf import DEFAULTS
from tests.conftest import vendor_settings

PREFIX = "django_vendor_notifications."


def error_ids() -> list[str]:
    return [message.id for message in check_settings() if message.id]


def registered_error_ids() -> list[str]:
    """The ids ``manage.py check`` sees: proves the check is registered, not just written."""
    return [m.id for m in run_checks() if m.id and m.id.startswith(PREFIX)]


def test_test_settings_have_no_errors() -> None:
    assert check_settings() == []
    assert registered_error_ids() == []


@pytest.mark.django_db
def test_manage_py_check_passes() -> None:
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


@pytest.mark.parametrize("value", [None, [], "testapp.Vendor", ("VENDOR_MODEL", "x")])
def test_e001_not_a_dict(value: Any) -> None:
    with override_settings(VENDOR_NOTIFICATIONS=value):
        assert error_ids() == [f"{PREFIX}E001"]
        assert registered_error_ids() == [f"{PREFIX}E001"]


def test_e001_missing(settings: Any) -> None:
    del settings.VENDOR_NOTIFICATIONS
    assert error_ids() == [f"{PREFIX}E001"]


def test_e002_unknown_key() -> None:
    with vendor_settings(VENDOR_MODLE="testapp.Vendor"):
        [error] = check_settings()
    assert error.id == f"{PREFIX}E002"
    assert "VENDOR_MODLE" in error.msg
    # The nearest key, not a list of every key.
    assert error.hint == "Did you mean 'VENDOR_MODEL'?"


def test_e002_one_error_per_unknown_key_and_no_guess_for_nonsense() -> None:
    with vendor_settings(PAGESIZE=10, XYZZY=1):
        errors = check_settings()
    assert [(e.id, e.hint) for e in errors] == [
        (f"{PREFIX}E002", "Did you mean 'PAGE_SIZE'?"),
        (f"{PREFIX}E002", f"See the {len(DEFAULTS)} known keys in docs/settings.md."),
    ]


@pytest.mark.parametrize("label", ["testapp.Nope", "nope.Vendor", "Vendor", "a.b.c", None, 1])
def test_e003_vendor_model(label: Any) -> None:
    with vendor_settings(VENDOR_MODEL=label):
        assert f"{PREFIX}E003" in error_ids()
        assert registered_error_ids() == [f"{PREFIX}E003"]


def test_e003_vendor_model_missing_from_the_dict() -> None:
    with override_settings(VENDOR_NOTIFICATIONS={}):
        [error] = check_settings()
    assert error.id == f"{PREFIX}E003"
    assert 'VENDOR_NOTIFICATIONS["VENDOR_MODEL"]' in error.msg


@pytest.mark.parametrize("field", ["name", "nope", "id"])
def test_e004_owner_field(field: str) -> None:
    with vendor_settings(VENDOR_OWNER_FIELD=field):
        assert error_ids() == [f"{PREFIX}E004"]


def test_e004_reverse_relation_is_not_an_owner_field() -> None:
    with vendor_settings(VENDOR_OWNER_FIELD="staff"):
        assert error_ids() == [f"{PREFIX}E004"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"VENDOR_STAFF_LOOKUP": "staff__nope"},
        {"VENDOR_STAFF_LOOKUP": "employees__user"},
        {"STAFF_PERMISSION_LOOKUP": "staff__role__nope"},
        {"VENDOR_STAFF_LOOKUP": None},
    ],
    ids=["bad-staff-lookup", "unknown-relation", "bad-permission-lookup", "permission-alone"],
)
def test_e005_lookups(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == [f"{PREFIX}E005"]


def test_staff_lookup_without_permission_lookup_is_valid() -> None:
    with vendor_settings(STAFF_PERMISSION_LOOKUP=None):
        assert error_ids() == []


@pytest.mark.parametrize(
    "path",
    [
        "tests.nowhere.Policy",
        "not a path",
        # A function, not a class.
        "django_vendor_notifications.permissions.get_access_policy",
        # A class without get_vendor/can_access.
        "django_vendor_notifications.conf.AppSettings",
    ],
)
def test_e006_access_policy(path: str) -> None:
    with vendor_settings(ACCESS_POLICY=path):
        assert error_ids() == [f"{PREFIX}E006"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"USER_GROUP": "notifications"},
        {"USER_GROUP": "notifications_{vendor_id}"},
        {"USER_GROUP": "notifications {user_id}"},
        {"USER_GROUP": "notifications_{user_id"},
        {"USER_GROUP": "n_{user_id}_{vendor_id}"},
        {"VENDOR_GROUP": "vendor_{user_id}"},
        {"VENDOR_GROUP": "vendor/{vendor_id}"},
        {"BROADCAST_GROUP": "all_{user_id}"},
        {"BROADCAST_GROUP": ""},
        {"BROADCAST_GROUP": "x" * 100},
        {"BROADCAST_GROUP": "ünïcode"},
        {"BROADCAST_GROUP": None},
    ],
    ids=repr,
)
def test_e007_group_names(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == [f"{PREFIX}E007"]


def test_group_name_overrides_are_valid() -> None:
    with vendor_settings(
        USER_GROUP="shop.user-{user_id}",
        VENDOR_GROUP="shop.vendor_{vendor_id}",
        BROADCAST_GROUP="shop.all",
    ):
        assert error_ids() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"UNREAD_LIMIT": 0},
        {"UNREAD_LIMIT": -1},
        {"UNREAD_LIMIT": "100"},
        {"UNREAD_LIMIT": True},
        {"PAGE_SIZE": 0},
        {"PAGE_SIZE": 2.5},
        {"PAGE_SIZE": None},
        {"MAX_MESSAGE_BYTES": 0},
        {"MAX_MESSAGE_BYTES": "16384"},
        {"RATE_LIMIT_BURST": 0},
        {"RATE_LIMIT_BURST": 2.0},
        {"MAX_SOCKETS_PER_USER": 0},
        {"MAX_SOCKETS_PER_USER": None},
        {"RATE_LIMIT_CLOSE_AFTER": -1},
        {"RATE_LIMIT_CLOSE_AFTER": 1.5},
        {"RATE_LIMIT_PER_SECOND": 0},
        {"RATE_LIMIT_PER_SECOND": float("inf")},
        {"RATE_LIMIT_PER_SECOND": True},
        {"TOKEN_EXPIRY_GRACE": -1},
        {"TOKEN_EXPIRY_GRACE": None},
        {"TOKEN_EXPIRY_GRACE": float("nan")},
        {"GROUP_LINGER": -0.5},
        {"GROUP_LINGER": None},
        {"DRAIN_SECONDS": -1},
        {"MAX_PENDING_CONNECTS": 0},
        {"MAX_PENDING_CONNECTS": 2.5},
        {"DRAIN_SECONDS": "5"},
        {"SOCKET_QUEUE_FRAMES": 0},
        {"SOCKET_QUEUE_FRAMES": 10.5},
        {"SOCKET_QUEUE_BYTES": -1},
        {"SOCKET_QUEUE_BYTES": "1MB"},
        {"REVALIDATE_INTERVAL": 0},
        {"REVALIDATE_INTERVAL": "300"},
        {"LAYER_CHECK_INTERVAL": 0},
        {"LAYER_CHECK_INTERVAL": float("inf")},
        {"LAYER_CHECK_INTERVAL": "5"},
        {"LAYER_TIMEOUT": float("nan")},
        {"MAX_PAGE_SIZE": 0},
        {"MAX_PAGE_SIZE": "100"},
        {"MAX_PAGE_SIZE": None},
        {"RETENTION_DAYS": 0},
        {"RETENTION_DAYS": -30},
        {"RETENTION_DAYS": 1.5},
        {"RETENTION_DAYS": "90"},
        {"RETENTION_DAYS": True},
    ],
    ids=repr,
)
def test_e008_numbers(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == [f"{PREFIX}E008"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"DATETIME_FORMAT": ""},
        {"DATETIME_FORMAT": None},
        {"DEFAULT_CATEGORY": ""},
        {"WEBSOCKET_PATH": None},
        {"TOKEN_QUERY_PARAMETER": ""},
        {"CATEGORIES": "General Notifications"},
        {"CATEGORIES": ["General Notifications", ""]},
        {"CATEGORIES": ["General Notifications", 3]},
        {"CATEGORIES": ["Order Notifications"]},
    ],
    ids=repr,
)
def test_e009_strings_and_categories(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == [f"{PREFIX}E009"]


def test_categories_including_default_are_valid() -> None:
    with vendor_settings(CATEGORIES=["General Notifications", "Order Notifications"]):
        assert error_ids() == []


def test_e010_channel_layer_alias() -> None:
    with vendor_settings(CHANNEL_LAYER="pushes"):
        assert error_ids() == [f"{PREFIX}E010"]
    with (
        override_settings(
            CHANNEL_LAYERS={
                **settings.CHANNEL_LAYERS,
                "pushes": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
            }
        ),
        vendor_settings(CHANNEL_LAYER="pushes"),
    ):
        assert error_ids() == []


@pytest.mark.parametrize("layers", [{}, None])
def test_e010_no_channel_layers(layers: Any) -> None:
    with override_settings(CHANNEL_LAYERS=layers):
        assert error_ids() == [f"{PREFIX}E010"]


def test_e010_channel_layers_missing(settings: Any) -> None:
    del settings.CHANNEL_LAYERS
    assert error_ids() == [f"{PREFIX}E010"]


def test_several_errors_are_reported_together() -> None:
    with vendor_settings(VENDOR_OWNER_FIELD="name", PAGE_SIZE=0, CHANNEL_LAYER="nope"):
        assert error_ids() == [f"{PREFIX}E004", f"{PREFIX}E008", f"{PREFIX}E010"]


def test_errors_name_the_setting() -> None:
    with vendor_settings(PAGE_SIZE=0):
        [error] = check_settings()
    assert 'VENDOR_NOTIFICATIONS["PAGE_SIZE"]' in error.msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"TOKEN_EXPIRY_GRACE": 0},
        {"TOKEN_EXPIRY_GRACE": 2.5},
        {"GROUP_LINGER": 0},
        {"GROUP_LINGER": 2},
        {"DRAIN_SECONDS": None},
        {"MAX_PENDING_CONNECTS": None},
        {"MAX_PENDING_CONNECTS": 1},
        {"DRAIN_SECONDS": 0},
        {"DRAIN_SECONDS": 2.5},
        {"SOCKET_QUEUE_FRAMES": 1},
        {"REVALIDATE_INTERVAL": None},
        {"REVALIDATE_INTERVAL": 0.5},
        {"LAYER_CHECK_INTERVAL": None},
        {"LAYER_CHECK_INTERVAL": 1},
        {"RATE_LIMIT_CLOSE_AFTER": 0},
        {"RATE_LIMIT_PER_SECOND": 1},
        {"MAX_MESSAGE_BYTES": 1},
        {"MAX_SOCKETS_PER_USER": 1},
    ],
    ids=repr,
)
def test_limit_edge_values_are_valid(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == []


@pytest.mark.parametrize("hosts", [["*"], ["shop.example", "*"]])
def test_w002_any_origin_in_production(hosts: list[str]) -> None:
    with override_settings(DEBUG=False, ALLOWED_HOSTS=hosts):
        [warning] = check_origin_policy()
        assert registered_error_ids() == [f"{PREFIX}W002"]
    assert warning.id == f"{PREFIX}W002"
    assert "ALLOWED_HOSTS" in warning.msg


@pytest.mark.parametrize(
    ("debug", "hosts"),
    [(True, ["*"]), (False, ["shop.example", ".shop.example"]), (False, [])],
    ids=["debug-with-wildcard", "production-with-hosts", "production-without-hosts"],
)
def test_w002_not_raised(debug: bool, hosts: list[str]) -> None:
    with override_settings(DEBUG=debug, ALLOWED_HOSTS=hosts):
        assert check_origin_policy() == []
        assert registered_error_ids() == []


@pytest.mark.parametrize("key", ["MAX_PAGE_SIZE", "RETENTION_DAYS"])
def test_inbox_number_errors_name_the_setting(key: str) -> None:
    with vendor_settings(**{key: "lots"}):
        [error] = check_settings()
        assert registered_error_ids() == [f"{PREFIX}E008"]
    assert error.id == f"{PREFIX}E008"
    assert f'VENDOR_NOTIFICATIONS["{key}"]' in error.msg
    assert "'lots'" in error.msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"RETENTION_DAYS": None},
        {"RETENTION_DAYS": 1},
        {"RETENTION_DAYS": 3650},
        {"MAX_PAGE_SIZE": 1},
        {"ISO_TIMESTAMPS": True},
        {"ISO_TIMESTAMPS": False},
    ],
    ids=repr,
)
def test_inbox_settings_valid_values(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == []


@pytest.mark.parametrize("value", ["false", "True", 1, 0, None, []], ids=repr)
def test_e011_iso_timestamps_must_be_a_bool(value: Any) -> None:
    with vendor_settings(ISO_TIMESTAMPS=value):
        [error] = check_settings()
        assert registered_error_ids() == [f"{PREFIX}E011"]
    assert error.id == f"{PREFIX}E011"
    assert 'VENDOR_NOTIFICATIONS["ISO_TIMESTAMPS"] must be True or False' in error.msg


@pytest.mark.parametrize("value", ["false", 1, None], ids=repr)
def test_e020_collapse_must_be_a_bool(value: Any) -> None:
    with vendor_settings(COLLAPSE=value):
        [error] = check_settings()
        assert registered_error_ids() == [f"{PREFIX}E020"]
    assert 'VENDOR_NOTIFICATIONS["COLLAPSE"] must be True or False' in error.msg
    with vendor_settings(COLLAPSE=True):
        assert error_ids() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"REST_AUTHENTICATION_CLASSES": "rest_framework.authentication.SessionAuthentication"},
        {"REST_AUTHENTICATION_CLASSES": ["nowhere.Authentication"]},
        {"REST_AUTHENTICATION_CLASSES": [None]},
        {"REST_THROTTLE_RATES": "100/min"},
        {"REST_THROTTLE_RATES": {"read": "100/fortnight"}},
        {"REST_THROTTLE_RATES": {"read": "lots/min"}},
        {"REST_THROTTLE_RATES": {"write": "0/min"}},
        {"REST_THROTTLE_RATES": {"write": 100}},
    ],
    ids=repr,
)
def test_e012_rest_api(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert registered_error_ids() == [f"{PREFIX}E012"]
        errors = check_settings()
    assert 'VENDOR_NOTIFICATIONS["REST_' in errors[0].msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"REST_THROTTLE_RATES": None},
        {"REST_THROTTLE_RATES": {"read": None, "write": "5/s"}},
        {"REST_AUTHENTICATION_CLASSES": []},
    ],
    ids=repr,
)
def test_rest_api_settings_valid_values(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == []


# ASGI applications a host might write, for E013 (ASGI_APPLICATION points at them).
def _asgi_applications() -> dict[str, Any]:
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter

    from django_vendor_notifications.auth import JWTAuthMiddlewareStack
    from django_vendor_notifications.origins import AllowedHostsOriginValidator
    from django_vendor_notifications.routing import refuse_unknown_paths, websocket_urlpatterns

    routes = [*websocket_urlpatterns, refuse_unknown_paths]
    return {
        "session_stack": ProtocolTypeRouter(
            {"websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes)))}
        ),
        # Channels' stack outside the JWT one still replaces the token's user.
        "both_stacks": ProtocolTypeRouter(
            {"websocket": AuthMiddlewareStack(JWTAuthMiddlewareStack(URLRouter(routes)))}
        ),
        "no_stack": ProtocolTypeRouter({"websocket": URLRouter(routes)}),
        "jwt_stack": ProtocolTypeRouter(
            {"websocket": AllowedHostsOriginValidator(JWTAuthMiddlewareStack(URLRouter(routes)))}
        ),
    }


ASGI_APPLICATIONS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    # Built on first use: "tests.test_checks.session_stack" for ASGI_APPLICATION.
    if not ASGI_APPLICATIONS:
        ASGI_APPLICATIONS.update(_asgi_applications())
    try:
        return ASGI_APPLICATIONS[name]
    except KeyError:
        raise AttributeError(name) from None


@pytest.mark.parametrize("path", ["tests.asgi.application", "tests.asgi_origin.application"])
def test_e013_finds_the_socket_in_the_documented_wiring(path: str) -> None:
    from django.utils.module_loading import import_string

    # The check is not vacuous: it reaches the consumer through the documented wrappers.
    assert _paths_to_consumer(import_string(path))
    with override_settings(ASGI_APPLICATION=path):
        assert check_asgi_application() == []


@pytest.mark.parametrize("name", ["session_stack", "both_stacks"])
def test_e013_channels_auth_middleware_stack(name: str) -> None:
    with override_settings(ASGI_APPLICATION=f"tests.test_checks.{name}"):
        [error] = check_asgi_application()
        assert f"{PREFIX}E013" in registered_error_ids()
    assert error.id == f"{PREFIX}E013"
    assert "AuthMiddlewareStack" in error.msg
    assert "JWTAuthMiddlewareStack" in error.hint


def test_e013_no_jwt_stack() -> None:
    with override_settings(ASGI_APPLICATION="tests.test_checks.no_stack"):
        [error] = check_asgi_application()
    assert error.id == f"{PREFIX}E013"
    assert "without JWTAuthMiddlewareStack" in error.msg


@pytest.mark.parametrize(
    "path", ["tests.test_checks.jwt_stack", "tests.nowhere.application", "", None]
)
def test_e013_not_raised(path: Any) -> None:
    # A broken or missing ASGI_APPLICATION is the ASGI server's to report.
    with override_settings(ASGI_APPLICATION=path):
        assert check_asgi_application() == []


def test_w003_runserver_without_daphne() -> None:
    apps = [app for app in settings.INSTALLED_APPS if app != "daphne"]
    with override_settings(DEBUG=True, INSTALLED_APPS=apps):
        [warning] = check_runserver_serves_websockets()
    assert warning.id == f"{PREFIX}W003"
    assert "404" in warning.msg


def test_w003_daphne_after_staticfiles() -> None:
    # Then staticfiles' runserver (Django's) wins, and the socket is a 404 all the same.
    apps = [app for app in settings.INSTALLED_APPS if app != "daphne"]
    apps += ["django.contrib.staticfiles", "daphne"]
    with override_settings(DEBUG=True, INSTALLED_APPS=apps):
        assert [w.id for w in check_runserver_serves_websockets()] == [f"{PREFIX}W003"]


@pytest.mark.parametrize("debug", [True, False])
def test_w003_not_raised(debug: bool) -> None:
    # With daphne first (the test settings), or in production, where runserver is not used.
    apps = [app for app in settings.INSTALLED_APPS if debug or app != "daphne"]
    with override_settings(DEBUG=debug, INSTALLED_APPS=apps):
        assert check_runserver_serves_websockets() == []


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "PS384", "EdDSA"])
def test_e014_asymmetric_algorithm_without_keys(algorithm: str) -> None:
    with override_settings(SIMPLE_JWT={"ALGORITHM": algorithm}):
        [error] = check_simple_jwt_keys()
        assert f"{PREFIX}E014" in registered_error_ids()
    assert error.id == f"{PREFIX}E014"
    assert "VERIFYING_KEY" in error.msg


@pytest.mark.parametrize(
    "simple_jwt",
    [
        {},
        {"ALGORITHM": "HS512"},
        {"ALGORITHM": "RS256", "VERIFYING_KEY": "-----BEGIN PUBLIC KEY-----..."},
        {"ALGORITHM": "RS256", "JWK_URL": "https://issuer.example/.well-known/jwks.json"},
    ],
)
def test_e014_not_raised(simple_jwt: dict[str, Any]) -> None:
    with override_settings(SIMPLE_JWT=simple_jwt):
        assert check_simple_jwt_keys() == []
@pytest.mark.parametrize(
    "overrides",
    [
        {"PREFERENCES": "yes"},
        {"PREFERENCES": 1},
        {"PREFERENCE_DEFAULTS": ["Order Notifications"]},
        {"PREFERENCE_DEFAULTS": {"Order Notifications": "silent"}},
        {"PREFERENCE_DEFAULTS": {"": "muted"}},
        {"PREFERENCE_DEFAULTS": {"Payouts": "muted"}, "UNMUTABLE_CATEGORIES": ["Payouts"]},
        {
            "CATEGORIES": ["General Notifications"],
            "PREFERENCE_DEFAULTS": {"Order Notifications": "muted"},
        },
        {"UNMUTABLE_CATEGORIES": "Payouts"},
        {"UNMUTABLE_CATEGORIES": [None]},
        {"CATEGORIES": ["General Notifications"], "UNMUTABLE_CATEGORIES": ["Payouts"]},
    ],
    ids=repr,
)
def test_e015_preferences(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert registered_error_ids() == [f"{PREFIX}E015"]
        errors = check_settings()
    assert 'VENDOR_NOTIFICATIONS["' in errors[0].msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"PREFERENCES": True},
        {"PREFERENCE_DEFAULTS": {"Order Notifications": "digest", "Payouts": "live"}},
        {"UNMUTABLE_CATEGORIES": ("Payouts",), "PREFERENCE_DEFAULTS": {"Payouts": "live"}},
        {
            "CATEGORIES": ["General Notifications", "Order Notifications"],
            "PREFERENCE_DEFAULTS": {"Order Notifications": "muted"},
            "UNMUTABLE_CATEGORIES": ["General Notifications"],
        },
    ],
    ids=repr,
)
def test_preference_settings_valid_values(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"DIGESTS": "yes"},
        {"DIGEST_AFTER": 0},
        {"DIGEST_AFTER": -5},
        {"DIGEST_AFTER": "1h"},
        {"DIGEST_AFTER": datetime.timedelta(0)},
        {"DIGESTS": True, "DIGEST_AFTER": float("inf")},
    ],
    ids=repr,
)
def test_e016_digests_and_digest_after(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert registered_error_ids() == [f"{PREFIX}E016"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"DIGEST_AFTER": 300, "REVALIDATE_INTERVAL": 300},
        {"DIGEST_AFTER": datetime.timedelta(minutes=4), "REVALIDATE_INTERVAL": 300},
        {"DIGEST_AFTER": 3600, "REVALIDATE_INTERVAL": None},
    ],
    ids=repr,
)
def test_e017_digest_after_not_longer_than_the_presence_refresh(
    overrides: dict[str, Any],
) -> None:
    with vendor_settings(DIGESTS=True, **overrides):
        assert registered_error_ids() == [f"{PREFIX}E017"]
        assert "REVALIDATE_INTERVAL" in check_settings()[0].msg
    # Off, the intervals do not matter.
    with vendor_settings(DIGESTS=False, **overrides):
        assert error_ids() == []


@pytest.mark.parametrize("value", [0, -1, 2.5, "10", True, None])
def test_e018_digest_max_items(value: Any) -> None:
    with vendor_settings(DIGEST_MAX_ITEMS=value):
        assert registered_error_ids() == [f"{PREFIX}E018"]


@pytest.mark.parametrize("value", ["", "  ", 42, ["a@example.com"]])
def test_e019_digest_from_email(value: Any) -> None:
    with vendor_settings(DIGEST_FROM_EMAIL=value):
        assert registered_error_ids() == [f"{PREFIX}E019"]


def test_w004_digest_after_less_than_twice_the_presence_refresh() -> None:
    with vendor_settings(DIGESTS=True, DIGEST_AFTER=500, REVALIDATE_INTERVAL=300):
        assert registered_error_ids() == [f"{PREFIX}W004"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"DIGESTS": True},
        {"DIGESTS": True, "DIGEST_AFTER": datetime.timedelta(hours=2), "DIGEST_MAX_ITEMS": 3},
        {"DIGESTS": True, "DIGEST_AFTER": 600.0, "DIGEST_FROM_EMAIL": "news@example.com"},
    ],
    ids=repr,
)
def test_digest_settings_valid_values(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert registered_error_ids() == []


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"SEEN": "false"}, "E023"),
        ({"SNOOZE": 1}, "E023"),
        ({"SNOOZE_MAX": 3600}, "E024"),
        ({"SNOOZE_MAX": datetime.timedelta(0)}, "E024"),
        ({"SNOOZE_MAX": datetime.timedelta(days=-1)}, "E024"),
        ({"SNOOZE_MAX": None}, "E024"),
    ],
    ids=repr,
)
def test_e023_e024_seen_and_snooze(overrides: dict[str, Any], error: str) -> None:
    with vendor_settings(**overrides):
        assert registered_error_ids() == [f"{PREFIX}{error}"]
        errors = check_settings()
    assert 'VENDOR_NOTIFICATIONS["' in errors[0].msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"SEEN": True},
        {"SNOOZE": True, "SNOOZE_MAX": datetime.timedelta(hours=1)},
        {"SEEN": False, "SNOOZE": False},
    ],
    ids=repr,
)
def test_seen_and_snooze_settings_valid_values(overrides: dict[str, Any]) -> None:
    with vendor_settings(**overrides):
        assert error_ids() == []
