"""The example project, run the way a user runs it.

Every command is ``python example_project/manage.py ...`` in a subprocess, on a fresh database
of its own: SQLite in a temporary directory, or, when DATABASE_URL names a PostgreSQL server, a
database ``example_demo_<random>`` created on that server and dropped afterwards. The
end-to-end tests start daphne's ``runserver`` and talk to it with a real WebSocket client, once
on the in-memory channel layer and once on Redis (skipped when Redis is not reachable).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from rest_framework_simplejwt.backends import TokenBackend
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

pytestmark = pytest.mark.e2e

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
MANAGE_PY = REPOSITORY_ROOT / "example_project" / "manage.py"
# The example project signs its tokens with DJANGO_SECRET_KEY; the tests check them with it.
SECRET_KEY = "example-project-tests-secret-key-long-enough-for-hs256"
# Variables of the calling shell that would change what the example project does.
PROJECT_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_PREFIX",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_SECRET_KEY",
)
ORDER = "Order Notifications"
GENERAL = "General Notifications"
TIMEOUT = 10.0


# --- running manage.py -------------------------------------------------------------------


def project_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in PROJECT_VARIABLES}
    env.update(DATABASE_URL=database_url, DJANGO_SECRET_KEY=SECRET_KEY, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def manage(
    *args: str,
    env: dict[str, str],
    python: tuple[str, ...] = (sys.executable,),
    cwd: Path = REPOSITORY_ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run manage.py and fail with its output when it fails."""
    result = subprocess.run(
        [*python, str(MANAGE_PY), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result


def shell_json(code: str, env: dict[str, str]) -> Any:
    """The JSON that ``code`` prints, run by ``manage.py shell`` in the example project."""
    # Verbosity 0: Django 5.2's shell otherwise reports its automatic imports on stdout.
    return json.loads(manage("shell", "--verbosity", "0", "-c", code, env=env).stdout)


@pytest.fixture(scope="module")
def new_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty databases; drops the PostgreSQL ones it created at the end."""
    server = urlsplit(os.environ.get("DATABASE_URL", ""))
    postgres = server.scheme in ("postgres", "postgresql", "pgsql")
    created: list[str] = []

    def admin_query(statement: str) -> None:
        import psycopg

        maintenance = urlunsplit(server._replace(scheme="postgresql", path="/postgres"))
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(statement)

    def make() -> str:
        if not postgres:
            return f"sqlite:///{tmp_path_factory.mktemp('example') / 'db.sqlite3'}"
        name = f"example_demo_{uuid.uuid4().hex[:12]}"
        admin_query(f'CREATE DATABASE "{name}"')
        created.append(name)
        return urlunsplit(server._replace(path=f"/{name}"))

    yield make
    for name in created:
        # Only databases this fixture created, and servers are stopped by now.
        admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def migrated(new_database: Callable[[], str]) -> tuple[dict[str, str], str]:
    """The environment of a freshly migrated example database, and migrate's output."""
    env = project_env(new_database())
    return env, manage("migrate", "--noinput", env=env).stdout


# --- the commands ------------------------------------------------------------------------


def test_migrate_applies_the_host_and_app_migrations(migrated: tuple[dict[str, str], str]) -> None:
    _, output = migrated
    assert "Applying marketplace.0001_initial... OK" in output
    assert "Applying django_vendor_notifications.0001_initial... OK" in output
    # The app's foreign key targets marketplace.Vendor, so its table must come second.
    assert output.index("marketplace.0001_initial") < output.index(
        "django_vendor_notifications.0001_initial"
    )


def test_check_reports_no_issues(migrated: tuple[dict[str, str], str]) -> None:
    env, _ = migrated
    result = manage("check", "--database", "default", env=env)
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert result.stderr == ""


def test_no_model_change_lacks_a_migration(migrated: tuple[dict[str, str], str]) -> None:
    env, _ = migrated
    result = manage("makemigrations", "--check", "--dry-run", env=env)
    assert "No changes detected" in result.stdout


def test_manage_py_works_without_the_package_installed(
    migrated: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, _ = migrated
    # An interpreter with the dependencies but not this package: -S skips site-packages (and
    # its .pth files, so an editable install is gone too), and PYTHONPATH offers a copy of
    # site-packages without the package (tox installs it there as a wheel).
    dependencies = tmp_path / "dependencies"
    dependencies.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "django_vendor_notifications" not in entry.name:
            (dependencies / entry.name).symlink_to(entry)
    plain = {**env, "PYTHONPATH": str(dependencies)}
    python = (sys.executable, "-S")
    without = subprocess.run(
        [*python, "-c", "import django, daphne; import django_vendor_notifications"],
        env=plain,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "No module named 'django_vendor_notifications'" in without.stderr

    result = manage("check", env=plain, python=python, cwd=tmp_path)
    assert "no issues" in result.stdout
    code = "import django_vendor_notifications as app; print(app.__file__)"
    result = manage("shell", "-v", "0", "-c", code, env=plain, python=python, cwd=tmp_path)
    assert Path(result.stdout.strip()).is_relative_to(REPOSITORY_ROOT)


def test_settings_default_to_sqlite_and_the_in_memory_layer(tmp_path: Path) -> None:
    env = project_env("unused")
    del env["DATABASE_URL"]
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'db': s.DATABASES['default'], 'layers': s.CHANNEL_LAYERS, 'debug': s.DEBUG, "
        "'hosts': s.ALLOWED_HOSTS, 'apps': s.INSTALLED_APPS, 'asgi': s.ASGI_APPLICATION, "
        "'vn': s.VENDOR_NOTIFICATIONS, 'tz': s.TIME_ZONE}, default=str))"
    )
    settings = shell_json(code, env)
    assert settings["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["db"]["NAME"] == str(REPOSITORY_ROOT / "example_project" / "db.sqlite3")
    assert settings["layers"] == {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert settings["debug"] is True
    assert settings["hosts"] == ["localhost", "127.0.0.1"]
    assert settings["apps"][0] == "daphne"
    assert settings["asgi"] == "exampleproject.asgi.application"
    assert settings["vn"]["VENDOR_MODEL"] == "marketplace.Vendor"
    assert settings["vn"]["ACCESS_POLICY"] == (
        "marketplace.notification_policy.MarketplaceAccessPolicy"
    )
    assert settings["tz"] == "Europe/Berlin"


def test_environment_switches_to_postgresql_and_redis() -> None:
    env = project_env(
        "postgres://shop:secret@db.example:5433/marketplace",
        REDIS_URL="redis://cache.example:6380/2",
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="shop.example, www.shop.example",
    )
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'db': s.DATABASES['default'], 'layers': s.CHANNEL_LAYERS, 'debug': s.DEBUG, "
        "'hosts': s.ALLOWED_HOSTS}, default=str))"
    )
    settings = shell_json(code, env)
    assert settings["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert (settings["db"]["NAME"], settings["db"]["HOST"]) == ("marketplace", "db.example")
    assert (settings["db"]["PORT"], settings["db"]["USER"]) == (5433, "shop")
    # A hung database gives up within seconds (docs/deployment.md#database-outages).
    assert settings["db"]["OPTIONS"]["connect_timeout"] == 5
    assert settings["db"]["OPTIONS"]["options"] == "-c statement_timeout=5000"
    assert settings["db"]["CONN_HEALTH_CHECKS"] is True
    layer = settings["layers"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    [host] = layer["CONFIG"]["hosts"]
    assert host["address"] == "redis://cache.example:6380/2"
    # Above channels-redis's 5 s blocking receive, or idle sockets die under redis-py 8.
    assert host["socket_timeout"] > 5
    assert settings["debug"] is False
    assert settings["hosts"] == ["shop.example", "www.shop.example"]


def decode(token: str) -> dict[str, Any]:
    """The claims of a token the example project signed (signature and expiry checked)."""
    # simplejwt annotates the argument as its Token class; the raw string is what it decodes.
    claims: dict[str, Any] = TokenBackend("HS256", SECRET_KEY).decode(token, verify=True)  # type: ignore[arg-type]
    return claims


def test_seed_demo_json(migrated: tuple[dict[str, str], str]) -> None:
    env, _ = migrated
    result = manage("seed_demo", "--json", env=env)
    seed = json.loads(result.stdout)  # the whole of stdout is one JSON object

    assert {"vendors", "tokens", "notifications"} <= set(seed)
    assert set(seed["tokens"]) == {
        "owner",
        "staff",
        "staff_no_permission",
        "customer",
        "other_owner",
        "owner_refresh",
    }
    assert set(seed["notifications"]) == {"owner", "other_owner"}
    first, second = seed["vendors"]
    assert first["id"] != second["id"]

    users = seed["users"]
    for role in ("owner", "staff", "staff_no_permission", "customer", "other_owner"):
        claims = decode(seed["tokens"][role])
        assert claims["token_type"] == "access"
        assert str(claims["user_id"]) == str(users[role]["id"])
    refresh = decode(seed["tokens"]["owner_refresh"])
    assert refresh["token_type"] == "refresh"
    assert str(refresh["user_id"]) == str(users["owner"]["id"])
    assert first["owner"] == users["owner"]["id"]
    assert second["owner"] == users["other_owner"]["id"]

    # What the database holds, read through the example project itself.
    rows = shell_json(
        "import json; from django_vendor_notifications.models import Notification as N; "
        "print(json.dumps(list(N.objects.values('id', 'vendor_id', 'category', 'is_read'))))",
        env,
    )
    by_vendor = {
        role: [row for row in rows if row["vendor_id"] == vendor["id"]]
        for role, vendor in zip(("owner", "other_owner"), seed["vendors"], strict=True)
    }
    for role in ("owner", "other_owner"):
        assert sorted(seed["notifications"][role]) == sorted(row["id"] for row in by_vendor[role])
    owner_rows = by_vendor["owner"]
    assert len(owner_rows) > 40  # more than two pages of 20
    assert any(row["is_read"] for row in owner_rows)
    assert {ORDER, GENERAL} <= {row["category"] for row in owner_rows if not row["is_read"]}
    assert any(not row["is_read"] for row in by_vendor["other_owner"])

    # A second run replaces the demo data instead of adding to it or failing on usernames.
    again = json.loads(manage("seed_demo", "--json", env=env).stdout)
    total = shell_json(
        "from django_vendor_notifications.models import Notification as N; "
        "print(N.objects.count())",
        env,
    )
    assert total == len(again["notifications"]["owner"]) + len(
        again["notifications"]["other_owner"]
    )
    assert not set(again["notifications"]["owner"]) & set(seed["notifications"]["owner"])
    assert len(again["notifications"]["owner"]) == len(seed["notifications"]["owner"])
    # ...and keeps the ids, so `send_notification --vendor <id>` from a first run still works.
    assert again["vendors"] == seed["vendors"]
    assert again["users"] == seed["users"]


def test_seed_demo_prints_logins_and_a_ready_link(migrated: tuple[dict[str, str], str]) -> None:
    env, _ = migrated
    output = manage("seed_demo", "--url", "http://localhost:9000/", env=env).stdout
    for username in ("demo-owner", "demo-manager", "demo-packer", "demo-customer"):
        assert username in output
    assert "demo-password" in output
    # The token rides in the fragment, which no server or proxy ever receives or logs.
    assert "?token=" not in output
    vendor = re.search(r"demo-owner +owns vendor (\d+)", output)
    assert vendor, output
    assert f"send_notification --vendor {vendor[1]} " in output
    link = next(line.strip() for line in output.splitlines() if "#token=" in line)
    assert link.startswith("http://localhost:9000/#token=")
    assert decode(link.split("#token=", 1)[1])["token_type"] == "access"


# --- a running server --------------------------------------------------------------------


@dataclass
class DemoServer:
    port: int
    layer: str
    env: dict[str, str]
    seed: dict[str, Any]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> Origin:
        return Origin(self.base_url)

    def socket_url(self, token: str | None) -> str:
        query = f"?token={token}" if token is not None else ""
        return f"ws://127.0.0.1:{self.port}/v1/ws/notifications/{query}"

    def token(self, role: str) -> str:
        return str(self.seed["tokens"][role])

    @property
    def owner_vendor(self) -> int:
        return int(self.seed["vendors"][0]["id"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module", params=["in-memory", "redis"])
def server(
    request: pytest.FixtureRequest,
    new_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DemoServer]:
    extra: dict[str, str] = {}
    if request.param == "redis":
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        if not reachable(redis_url):
            pytest.skip(f"Redis is not reachable at {redis_url}")
        # A prefix of its own keeps this run apart from anyone else using the same Redis.
        extra = {"REDIS_URL": redis_url, "REDIS_PREFIX": f"example-tests-{uuid.uuid4().hex}"}
    env = project_env(new_database(), **extra)
    manage("migrate", "--noinput", env=env)
    seed = json.loads(manage("seed_demo", "--json", env=env).stdout)
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "runserver.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, str(MANAGE_PY), "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=REPOSITORY_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not reachable(f"//127.0.0.1:{port}"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"runserver did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield DemoServer(port=port, layer=request.param, env=env, seed=seed, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def post_json(url: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    status, content = await asyncio.to_thread(http, "POST", url, body, token)
    return status, json.loads(content)


async def receive(socket_: ClientConnection, action: str | None = None) -> dict[str, Any]:
    """The next frame (with ``action``, skipping others), failing after TIMEOUT seconds."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket_.recv(), remaining))
        if action is None or frame["action"] == action:
            return frame


async def request(socket_: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    request_id = uuid.uuid4().hex
    await socket_.send(json.dumps({**frame, "request_id": request_id}))
    while True:
        reply = await receive(socket_)
        if reply.get("request_id") == request_id:
            return reply


def items(grouped: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for group in grouped.values() for item in group]


async def test_owner_receives_unread_notifications_grouped_by_category(server: DemoServer) -> None:
    async with connect(server.socket_url(server.token("owner")), origin=server.origin) as ws:
        frame = await receive(ws)
    assert frame["action"] == "unread_notifications"
    grouped = frame["notifications"]
    assert {ORDER, GENERAL} <= set(grouped)
    for label, group in grouped.items():
        assert all(item["category"] == label for item in group)
    unread = items(grouped)
    assert all(item["is_read"] is False and item["readed_at"] is None for item in unread)
    assert {item["vendor"] for item in unread} == {server.owner_vendor}
    # Seeded rows, plus any a test before this one created through the demo endpoint.
    seeded = set(server.seed["notifications"]["owner"])
    assert len(seeded & {item["id"] for item in unread}) >= 2


async def test_demo_notify_arrives_live(server: DemoServer) -> None:
    owner = server.token("owner")
    async with connect(server.socket_url(owner), origin=server.origin) as ws:
        await receive(ws, "unread_notifications")
        status, created = await post_json(
            f"{server.base_url}/demo/notify/", {"category": ORDER}, owner
        )
        assert status == 201, created
        frame = await receive(ws, "new_notification")
    notification = frame["notification"]
    assert notification["id"] == created["id"]
    assert notification["category"] == ORDER
    assert notification["vendor"] == server.owner_vendor
    assert notification["message"] == created["message"]
    assert notification["is_read"] is False
    # The demo collapses new orders: the page shows "12 new orders".
    assert notification["collapse_key"] == "new-order"
    assert notification["collapsed_count"] >= 1


async def test_staff_whose_role_allows_it_reads_the_owners_vendor(server: DemoServer) -> None:
    async with connect(server.socket_url(server.token("staff")), origin=server.origin) as ws:
        frame = await receive(ws, "unread_notifications")
        # ...and receives what is created for that vendor.
        status, created = await post_json(
            f"{server.base_url}/demo/notify/", {"category": GENERAL}, server.token("owner")
        )
        assert status == 201
        pushed = await receive(ws, "new_notification")
    assert {item["vendor"] for item in items(frame["notifications"])} == {server.owner_vendor}
    assert pushed["notification"]["id"] == created["id"]


async def test_another_vendor_sees_only_its_own_notifications(server: DemoServer) -> None:
    other = server.token("other_owner")
    async with connect(server.socket_url(other), origin=server.origin) as ws:
        frame = await receive(ws, "unread_notifications")
        foreign_id = server.seed["notifications"]["owner"][-1]
        reply = await request(ws, {"action": "mark_read", "notification_id": foreign_id})
    unread_ids = {item["id"] for item in items(frame["notifications"])}
    assert unread_ids and unread_ids <= set(server.seed["notifications"]["other_owner"])
    assert reply["status"] == "error" and reply["error"] == "not_found"


async def test_mark_read_and_load_more(server: DemoServer) -> None:
    owner = server.token("owner")
    async with connect(server.socket_url(owner), origin=server.origin) as ws:
        unread = items((await receive(ws, "unread_notifications"))["notifications"])
        target = unread[-1]["id"]
        reply = await request(ws, {"action": "mark_read", "notification_id": target})
        assert reply["status"] == "success"
        first = await request(ws, {"action": "load_more", "page": 1})
        last = await request(ws, {"action": "load_more", "page": 3})
    assert first["has_more"] is True and len(items(first["notifications"])) == 20
    assert last["has_more"] is False
    # Page 3 ends with the oldest seeded notifications, whatever tests added on top.
    assert server.seed["notifications"]["owner"][0] in {
        i["id"] for i in items(last["notifications"])
    }

    async with connect(server.socket_url(owner), origin=server.origin) as ws:
        again = items((await receive(ws, "unread_notifications"))["notifications"])
    assert target not in {item["id"] for item in again}


async def test_a_foreign_origin_is_refused(server: DemoServer) -> None:
    url = server.socket_url(server.token("owner"))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=Origin("http://evil.example")):
            pass
    assert refused.value.response.status_code == 403


async def test_a_missing_origin_is_allowed(server: DemoServer) -> None:
    # Non-browser clients send no Origin; they still need a valid token.
    async with connect(server.socket_url(server.token("owner"))) as ws:
        frame = await receive(ws)
    assert frame["action"] == "unread_notifications"


@pytest.mark.parametrize(
    ("role", "code"),
    [
        ("staff_no_permission", 4003),
        ("customer", 4003),
        ("owner_refresh", 4001),
        ("not-a-token", 4001),
        (None, 4001),
    ],
)
async def test_refused_users_are_closed_with_the_documented_code(
    server: DemoServer, role: str | None, code: int
) -> None:
    token = server.seed["tokens"].get(role, role) if role else None
    async with connect(server.socket_url(token), origin=server.origin) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


async def test_the_pages_login_gets_tokens_the_socket_accepts(server: DemoServer) -> None:
    status, tokens = await post_json(
        f"{server.base_url}/api/token/", {"username": "demo-owner", "password": "demo-password"}
    )
    assert status == 200
    status, refreshed = await post_json(
        f"{server.base_url}/api/token/refresh/", {"refresh": tokens["refresh"]}
    )
    assert status == 200
    for access in (tokens["access"], refreshed["access"]):
        async with connect(server.socket_url(access), origin=server.origin) as ws:
            assert (await receive(ws))["action"] == "unread_notifications"
    status, _ = await post_json(
        f"{server.base_url}/api/token/", {"username": "demo-owner", "password": "wrong"}
    )
    assert status == 401


async def test_demo_notify_refuses_callers_without_a_vendor(server: DemoServer) -> None:
    url = f"{server.base_url}/demo/notify/"
    assert (await post_json(url, {"category": ORDER}))[0] == 401
    assert (await post_json(url, {"category": ORDER}, server.seed["tokens"]["owner_refresh"]))[
        0
    ] == 401
    for role in ("customer", "staff_no_permission"):
        assert (await post_json(url, {"category": ORDER}, server.token(role)))[0] == 403
    status, body = await post_json(url, {"category": "Spam"}, server.token("owner"))
    assert status == 400 and "Spam" in body["detail"]


def test_a_token_in_a_plain_http_request_stays_out_of_the_log(server: DemoServer) -> None:
    """A tab opened on the socket URL (or any page) with ?token=: runserver logs the request
    line, with the token's value redacted."""
    token = server.token("owner")
    status, _ = http("GET", f"{server.base_url}/v1/ws/notifications/?token={token}")
    assert status == 404
    assert http("GET", f"{server.base_url}/?x=1&token={token}")[0] == 200
    deadline = time.monotonic() + 5
    while "/?x=1&token=" not in (log := server.log_path.read_text()):
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.05)
    assert "/v1/ws/notifications/?token=[redacted]" in log
    assert "/?x=1&token=[redacted]" in log
    assert token not in log and token.split(".")[2] not in log


def test_the_demo_page_is_served(server: DemoServer) -> None:
    status, page = http("GET", f"{server.base_url}/?token=ignored-by-the-server")
    assert status == 200
    html = page.decode()
    assert 'id="login-form"' in html
    assert '<script id="demo-config" type="application/json">' in html
    assert '"websocketPath": "/v1/ws/notifications/"' in html
    # No build step and no CDN: the script is served by the project itself.
    assert "/static/marketplace/demo.js" in html and "https://" not in html
    # The page is a module that uses the app's browser client, served from the app's static.
    assert '<script type="module" src="/static/marketplace/demo.js">' in html
    assert '"/static/django_vendor_notifications/client.js"' in html
    status, script = http("GET", f"{server.base_url}/static/marketplace/demo.js")
    assert status == 200
    assert b"new NotificationClient(" in script and b"client.markRead(" in script
    # The badge comes from the HTTP counts before the socket opens.
    assert '"countsUrl": "/api/notifications/counts/"' in html
    assert b"fetch(config.countsUrl" in script
    status, client = http("GET", f"{server.base_url}/static/django_vendor_notifications/client.js")
    assert status == 200
    assert b"export class NotificationClient" in client and b'"mark_read"' in client


def test_the_http_api_and_its_openapi_document_are_served(server: DemoServer) -> None:
    owner = server.token("owner")
    status, body = http("GET", f"{server.base_url}/api/notifications/counts/", token=owner)
    assert status == 200
    counts = json.loads(body)
    assert counts["action"] == "get_unread_counts" and counts["unread_total"] >= 2
    status, body = http("GET", f"{server.base_url}/api/notifications/counts/")
    assert status == 401
    status, body = http("GET", f"{server.base_url}/api/schema/?format=json")
    assert status == 200
    paths = json.loads(body)["paths"]
    assert {"/api/notifications/counts/", "/api/notifications/{id}/mark-read/"} <= set(paths)


async def test_send_notification_reaches_sockets_through_redis_only(server: DemoServer) -> None:
    vendor = str(server.owner_vendor)
    async with connect(server.socket_url(server.token("owner")), origin=server.origin) as ws:
        await receive(ws, "unread_notifications")
        result = await asyncio.to_thread(
            manage,
            "send_notification",
            "--vendor",
            vendor,
            "--message",
            "From a shell",
            env=server.env,
        )
        notification_id = int(result.stdout.strip())
        if server.layer == "redis":
            frame = await receive(ws, "new_notification")
            assert frame["notification"]["id"] == notification_id
        else:
            # Another process cannot reach an in-memory layer: the command says so, and the
            # notification waits in the database for the next connect.
            assert "in-memory channel layer" in result.stderr
    if server.layer != "redis":
        async with connect(server.socket_url(server.token("owner")), origin=server.origin) as ws:
            frame = await receive(ws, "unread_notifications")
        assert notification_id in {item["id"] for item in items(frame["notifications"])}


@pytest.mark.parametrize("reachable", [True, False])
def test_make_demo_says_which_channel_layer_it_runs_on(reachable: bool) -> None:
    """make demo runs on Redis when it answers, else in memory, and says which at the start."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if reachable:
        import redis

        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
        except redis.RedisError:
            pytest.skip(f"no Redis answers at {redis_url}")
    else:
        # A port nothing listens on.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            redis_url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    result = subprocess.run(
        [
            "make",
            "-s",
            "demo-layer",
            f"REDIS_URL={redis_url}",
            f"BIN={Path(sys.executable).parent}",
        ],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    expected = f"Channel layer: Redis at {redis_url}." if reachable else "Channel layer: in-memory"
    assert result.stdout.startswith(expected), result.stdout
