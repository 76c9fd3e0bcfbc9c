"""The example project's demo page in a real browser: Debian's Chromium, driven by Playwright.

The example project runs as a user runs it (``manage.py runserver`` in a subprocess) on a fresh
SQLite database and the local Redis under a prefix of its own, so a notification sent by
``manage.py send_notification`` from another process reaches the page live. The test logs in
through the page's form, watches a second tab follow a "mark read" and a category's "mark all
read", loads more history, stops the server, sends a
notification while it is down and starts it again: the page must recover with everything, and
nothing twice.

Run it with ``python -m pytest -m browser``. It needs ``/usr/bin/chromium`` (``apt-get install
chromium``), Playwright for Python (``pip install -e '.[browser]'``; Playwright's own browser
download is not used) and Redis (``REDIS_URL``, default ``redis://127.0.0.1:6379/0``); it skips
with the reason when one is missing (and fails instead when REQUIRE_BROWSER_TEST=1, as in CI).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
MANAGE_PY = REPOSITORY_ROOT / "example_project" / "manage.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
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
PAYMENT = "Payment Notifications"
GENERAL = "General Notifications"
#: How long the page may take to show what the server sent (ms, Playwright's unit).
WAIT_MS = 15_000


def missing(reason: str) -> None:
    """Skip for want of ``reason``; fail instead where the test must run (REQUIRE_BROWSER_TEST=1,
    set by .ci/run after installing what it needs)."""
    if os.environ.get("REQUIRE_BROWSER_TEST") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), 1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def manage(*args: str, env: dict[str, str]) -> str:
    """Run manage.py in its own process; its stdout, or fail with its stderr."""
    result = subprocess.run(
        [sys.executable, str(MANAGE_PY), *args],
        env=env,
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


class Server:
    """``manage.py runserver`` on a fixed port, so it can be stopped and started again."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env, self.port, self.log_path = env, port, log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(MANAGE_PY),
                    "runserver",
                    f"127.0.0.1:{self.port}",
                    "--noreload",
                ],
                env=self.env,
                cwd=REPOSITORY_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not reachable("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"runserver did not start:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A migrated, seeded example project on the local Redis, served by runserver."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: apt-get install chromium")
    if importlib.util.find_spec("playwright") is None:
        missing("Playwright for Python is missing: pip install -e '.[browser]'")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis = urlsplit(redis_url)
    if not reachable(redis.hostname or "127.0.0.1", redis.port or 6379):
        missing(f"Redis is not reachable at {redis_url}: the test sends from another process")

    env = {key: value for key, value in os.environ.items() if key not in PROJECT_VARIABLES}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=redis_url,
        # A prefix of its own keeps this run apart from anyone else using the same Redis.
        REDIS_PREFIX=f"browser-tests-{uuid.uuid4().hex}",
        DJANGO_SECRET_KEY="browser-tests-secret-key-long-enough-for-hs256-signing",
        PYTHONUNBUFFERED="1",
    )
    manage("migrate", "--noinput", env=env)
    seed = json.loads(manage("seed_demo", "--json", env=env))
    server = Server(env, free_port(), tmp_path / "runserver.log")
    server.start()
    try:
        yield server, seed
    finally:
        server.stop()


def send_notification(server: Server, vendor: int, category: str, message: str) -> int:
    """Create a notification from another process, as a cron job or a shell would."""
    output = manage(
        "send_notification",
        "--vendor",
        str(vendor),
        "--category",
        category,
        "--message",
        message,
        env=server.env,
    )
    return int(output.strip())


def test_demo_page_in_chromium(
    project: tuple[Server, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
    record_property: Any,
) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    server, seed = project
    vendor = int(seed["vendors"][0]["id"])
    started = time.monotonic()

    def log_in(page: Page) -> None:
        page.goto(server.url)
        page.fill("input[name=username]", "demo-owner")
        page.fill("input[name=password]", "demo-password")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#status")).to_have_attribute("data-state", "open", timeout=WAIT_MS)

    def ids(page: Page, rows: str = "li.item") -> list[int]:
        """The notification ids the page shows, in page order (duplicates kept)."""
        shown = page.locator(rows).evaluate_all("rows => rows.map(row => row.dataset.id)")
        return [int(notification_id) for notification_id in shown]

    def badge(page: Page) -> Any:
        return page.locator("#unread-badge")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 1400})
            first = context.new_page()
            errors: list[str] = []
            first.on("pageerror", lambda error: errors.append(str(error)))

            # Log in through the form: unread notifications, grouped by category.
            log_in(first)
            unread = ids(first, "li.item.unread")
            assert len(unread) >= 2 and len(set(unread)) == len(unread)
            expect(badge(first)).to_have_text(str(len(unread)))
            for label in (ORDER, GENERAL):
                group = first.locator(f'section.category[data-category="{label}"]')
                expect(group.locator("li.item.unread").first).to_be_visible()
                count = group.locator("li.item.unread").count()
                expect(group.locator("h3 .badge")).to_have_text(str(count))
            assert set(unread) <= set(seed["notifications"]["owner"])

            # Live: a notification created by another process arrives through Redis.
            live = send_notification(server, vendor, PAYMENT, "Sent from another process")
            row = first.locator(f'li.item[data-id="{live}"]')
            expect(row).to_be_visible(timeout=WAIT_MS)
            expect(row).to_have_class("item unread fresh")
            expect(row).to_contain_text("Sent from another process")
            expect(
                first.locator(f'section.category[data-category="{PAYMENT}"] li[data-id="{live}"]')
            ).to_have_count(1)
            total = len(unread) + 1
            expect(badge(first)).to_have_text(str(total))

            # A second tab of the same browser, logged in too, follows a "mark read" in the first.
            second = context.new_page()
            second.on("pageerror", lambda error: errors.append(str(error)))
            log_in(second)
            expect(badge(second)).to_have_text(str(total))
            first.locator(f'li.item[data-id="{live}"] button', has_text="Mark read").click()
            expect(first.locator(f'li.item[data-id="{live}"]')).to_have_class("item read fresh")
            expect(badge(first)).to_have_text(str(total - 1))
            expect(badge(second)).to_have_text(str(total - 1), timeout=WAIT_MS)
            expect(second.locator(f'li.item[data-id="{live}"]')).to_have_class("item read")
            total -= 1

            # "Mark all read" for one category: its unread ones turn read in both tabs, and both
            # badges drop by the category's count (the second tab through unread_count_changed).
            general = f'section.category[data-category="{GENERAL}"]'
            general_unread = ids(first, f"{general} li.item.unread")
            general_count = int(first.locator(f"{general} h3 .badge").inner_text())
            assert general_unread and general_count >= len(general_unread)
            expect(first.locator("#mark-all-note")).to_be_hidden()
            first.locator(f"{general} h3 button", has_text="Mark all read").click()
            total -= general_count
            for page in (first, second):
                expect(page.locator(f"{general} li.item.unread")).to_have_count(0, timeout=WAIT_MS)
                expect(badge(page)).to_have_text(str(total), timeout=WAIT_MS)
            unread = [notification_id for notification_id in unread
                      if notification_id not in general_unread]

            # Load more: pages of history (read ones too) join the groups, without duplicates.
            shown = len(ids(first))
            first.click("#load-more")
            expect(first.locator("li.item")).not_to_have_count(shown, timeout=WAIT_MS)
            before_restart = ids(first)
            assert len(before_restart) == len(set(before_restart)) > total

            # Restart the server; while it is down, another process sends a notification.
            server.stop()
            expect(first.locator("#status")).to_have_attribute(
                "data-state", "reconnecting", timeout=WAIT_MS
            )
            expect(first.locator("#status")).to_contain_text("reconnecting in")
            missed = send_notification(server, vendor, ORDER, "Sent while the server was down")
            server.start()

            for page in (first, second):
                expect(page.locator("#status")).to_have_attribute(
                    "data-state", "open", timeout=WAIT_MS
                )
                expect(page.locator(f'li.item[data-id="{missed}"]')).to_have_count(
                    1, timeout=WAIT_MS
                )
                expect(badge(page)).to_have_text(str(total + 1))
            after = ids(first)
            assert len(after) == len(set(after)), "a notification is shown twice"
            assert set(after) == set(before_restart) | {missed}, "a notification went missing"
            assert set(ids(first, "li.item.unread")) == (set(unread) | {missed})
            assert errors == []

            screenshot = tmp_path_factory.mktemp("browser") / "demo-page.png"
            first.screenshot(path=str(screenshot), full_page=True)
            record_property("screenshot", str(screenshot))
            print(f"\nscreenshot of the demo page: {screenshot}")
        finally:
            browser.close()
    print(f"browser test took {time.monotonic() - started:.1f} s")
