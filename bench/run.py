"""The benchmark harness: seeds PostgreSQL, starts the servers, drives the load, reports.

    python -m bench.run --quick      # make bench-quick: small N, one server, about a minute
    python -m bench.run --full       # make bench: every server and layer, about ten minutes

This process is the load client (one asyncio loop, the ``websockets`` package), pinned to the
second core; each server runs pinned to the first (``taskset -c 0``). Redis and PostgreSQL are
the local ones (REDIS_URL, BENCH_DATABASE_URL). Everything is written to
bench/results/<name>.json and printed as a table; docs/benchmarks.md explains each scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WEBSOCKET_PATH = "/v1/ws/notifications/"
SERVER_CORE = "0"
CLIENT_CORE = 1
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_vn")
PREFIX = os.environ.get("BENCH_REDIS_PREFIX", "vn-bench")
CONNECT_CONCURRENCY = 50

os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "TEST_CHANNEL_LAYER": "redis",
        "TEST_CHANNEL_LAYER_PREFIX": f"{PREFIX}-harness",
    }
)

from bench import report  # noqa: E402
from bench.report import Row  # noqa: E402


@dataclass(frozen=True)
class Config:
    server: str  # daphne or uvicorn
    layer: str  # redis or redis-pubsub (tests/settings.py's names)

    def __str__(self) -> str:
        return f"{self.server} / {'RedisPubSub' if self.layer == 'redis-pubsub' else 'Redis'}"


@dataclass(frozen=True)
class Profile:
    name: str
    configs: tuple[Config, ...]
    connect_samples: int
    history_samples: int
    history_rows: int
    fanout_sockets: int
    fanout_rounds: int
    push_rounds: int
    throughput_sockets: int
    throughput_rates: tuple[int, ...]
    throughput_step_s: float
    scale_steps: tuple[int, ...]
    scale_rounds: int
    churn_cycles: int
    churn_sockets: int


DAPHNE_REDIS = Config("daphne", "redis")
ALL_CONFIGS = (
    DAPHNE_REDIS,
    Config("daphne", "redis-pubsub"),
    Config("uvicorn", "redis"),
    Config("uvicorn", "redis-pubsub"),
)
PROFILES = {
    "quick": Profile(
        name="quick",
        configs=(DAPHNE_REDIS,),
        connect_samples=30,
        history_samples=10,
        history_rows=10_000,
        fanout_sockets=200,
        fanout_rounds=20,
        push_rounds=20,
        throughput_sockets=20,
        throughput_rates=(1000, 2500, 5000, 10_000),
        throughput_step_s=1.0,
        scale_steps=(100, 200, 300, 400, 500),
        scale_rounds=3,
        churn_cycles=4,
        churn_sockets=100,
    ),
    "full": Profile(
        name="full",
        configs=ALL_CONFIGS,
        connect_samples=150,
        history_samples=40,
        history_rows=100_000,
        fanout_sockets=1000,
        fanout_rounds=20,
        push_rounds=50,
        throughput_sockets=50,
        throughput_rates=(1000, 2500, 5000, 7500, 10_000, 15_000, 20_000),
        throughput_step_s=1.0,
        scale_steps=(1000, 2000, 3000, 4000, 5000),
        scale_rounds=3,
        churn_cycles=20,
        churn_sockets=500,
    ),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the database ------------------------------------------------------------------------


def ensure_database() -> None:
    """Create the bench database if it does not exist, then set Django up and migrate."""
    import dj_database_url
    import psycopg

    settings = dj_database_url.parse(DATABASE_URL)
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings["NAME"],)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{settings["NAME"]}"')

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


@dataclass
class Seed:
    tokens: dict[str, str]
    vendor_ids: dict[str, int]
    #: A row of the mark_read / load_more vendor, to mark read.
    unread_id: int
    bare_frame: str
    fanout_template: str


HISTORY_VENDORS = ("hist-10-1", "hist-10-20", "hist-big-1", "hist-big-20")


def seed(history_rows: int) -> Seed:
    """Vendors and notifications, created with bulk_create; kept between runs when present."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from django_vendor_notifications import payloads, services
    from django_vendor_notifications.models import Notification
    from tests.testapp.models import Vendor

    base = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    user_model = get_user_model()

    def vendor(name: str, rows: int, categories: int, unread: int) -> Vendor:
        user, _ = user_model.objects.get_or_create(username=f"bench-{name}")
        found, _ = Vendor.objects.get_or_create(user=user, defaults={"name": name})
        if Notification.objects.filter(vendor=found).count() == rows:
            return found
        Notification.objects.filter(vendor=found).delete()
        started = time.monotonic()
        Notification.objects.bulk_create(
            (
                Notification(
                    vendor=found,
                    category=f"Category {i % categories}",
                    message=f"Notification {i} of {name}",
                    context_data={"order_id": i},
                    is_read=i < rows - unread,
                    is_recent_notification=i >= rows - unread,
                    created_at=base + datetime.timedelta(seconds=i),
                )
                for i in range(rows)
            ),
            batch_size=5000,
        )
        log(f"seeded {rows:,} notifications for {name} in {time.monotonic() - started:.1f}s")
        return found

    big = history_rows
    vendors = {
        "connect-100": vendor("connect-100", 200, 5, 100),
        "hist-10-1": vendor("hist-10-1", 10, 1, 10),
        "hist-10-20": vendor("hist-10-20", 10, 20, 10),
        "hist-big-1": vendor(f"hist-{big}-1", big, 1, 10),
        "hist-big-20": vendor(f"hist-{big}-20", big, 20, 10),
        "fanout": vendor("fanout", 0, 1, 0),
        "push": vendor("push", 0, 1, 0),
        "throughput": vendor("throughput", 0, 1, 0),
    }
    with connection_cursor() as cursor:
        cursor.execute("ANALYZE")
    tokens = {name: str(AccessToken.for_user(v.user)) for name, v in vendors.items()}
    connect_vendor = vendors["connect-100"]
    bare_frame = payloads.encode(services.unread_notifications(connect_vendor.pk))
    unread_id = (
        Notification.objects.filter(vendor=connect_vendor, is_read=False)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    sample = Notification(
        id=123456,
        vendor_id=vendors["fanout"].pk,
        category="Order Notifications",
        message="Order @@ROUND@@ has been placed.",
        context_data={"order_id": 42},
        created_at=base,
    )
    template = payloads.encode(payloads.new_notification_frame(services._row(sample)))
    return Seed(
        tokens=tokens,
        vendor_ids={name: v.pk for name, v in vendors.items()},
        unread_id=unread_id,
        bare_frame=bare_frame,
        fanout_template=template,
    )


def connection_cursor() -> Any:
    from django.db import connection

    return connection.cursor()


# --- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        import psutil

        return psutil.Process(self.pid).memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def pinned(command: list[str]) -> list[str]:
    if (os.cpu_count() or 1) < 2:
        return command
    return ["taskset", "-c", SERVER_CORE, *command]


def start(name: str, command: list[str], env: dict[str, str], port: int, logs: Path) -> Server:
    log_path = logs / f"{name.replace(' ', '').replace('/', '-')}-{port}.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            pinned(command), cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log_path.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{name} did not listen within 30s")


def start_asgi(config: Config, env: dict[str, str], logs: Path) -> Server:
    port = free_port()
    python = sys.executable
    if config.server == "daphne":
        command = [
            python,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "bench.asgi:application",
        ]
    else:
        command = [
            python,
            "-m",
            "uvicorn",
            "bench.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--ws-per-message-deflate",
            "false",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    return start(str(config), command, env, port, logs)


def start_floor(channel: str, frame_file: Path, logs: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "bench.floor", str(port), REDIS_URL, channel, str(frame_file)]
    return start("floor", command, dict(os.environ), port, logs)


# --- the load client ---------------------------------------------------------------------


class Sockets:
    """Open client sockets whose frames go to one replaceable callback."""

    def __init__(self) -> None:
        self.sockets: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.on_frame: Callable[[str, float], None] = lambda text, at: None

    async def open(self, url: str, count: int) -> None:
        from websockets.asyncio.client import connect

        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> None:
            async with limit:
                ws = await connect(
                    url,
                    compression=None,
                    proxy=None,
                    open_timeout=60,
                    ping_interval=None,
                    max_queue=None,
                )
                await asyncio.wait_for(ws.recv(), 30)  # the first frame
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self.read(ws)))

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        # Thousands of open sockets are thousands of long-lived objects: frozen, the client's
        # collector no longer walks them again and again while the next ones open.
        gc.collect()
        gc.freeze()
        if count >= 100:
            log(f"  opened {count} sockets in {time.perf_counter() - started:.1f}s")

    async def read(self, ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for text in ws:
                self.on_frame(text, time.perf_counter())

    async def close(self) -> None:
        sockets, self.sockets = self.sockets, []
        readers, self.readers = self.readers, []
        limit = asyncio.Semaphore(200)

        async def one(ws: Any) -> None:
            async with limit:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 10)

        started = time.perf_counter()
        await asyncio.gather(*(one(ws) for ws in sockets))
        if len(sockets) >= 100:
            log(f"  closed {len(sockets)} sockets in {time.perf_counter() - started:.1f}s")
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        gc.unfreeze()

    def __len__(self) -> int:
        return len(self.sockets)


async def fanout_rounds(
    sockets: Sockets, publish: Callable[[str], Awaitable[Any]], template: str, rounds: int
) -> list[float]:
    """Seconds from publish to the last socket's frame, one per round.

    The client's garbage collector is off during the rounds (one collection before them): a
    collection of thousands of sockets' objects would be measured as the server's latency.
    """
    latencies = []
    gc.collect()
    gc.disable()
    try:
        await _rounds(sockets, publish, template, rounds, latencies)
    finally:
        gc.enable()
    sockets.on_frame = lambda text, at: None
    return latencies


async def _rounds(
    sockets: Sockets,
    publish: Callable[[str], Awaitable[Any]],
    template: str,
    rounds: int,
    latencies: list[float],
) -> None:
    for number in range(rounds):
        marker = f"bench-{uuid.uuid4().hex[:8]}-{number}"
        expected = len(sockets)
        state = {"count": 0, "last": 0.0}
        done = asyncio.Event()

        def on_frame(
            text: str,
            at: float,
            marker: str = marker,
            state: dict[str, Any] = state,
            expected: int = expected,
            done: asyncio.Event = done,
        ) -> None:
            if marker in text:
                state["count"] += 1
                if state["count"] == expected:
                    state["last"] = at
                    done.set()

        sockets.on_frame = on_frame
        text = template.replace("@@ROUND@@", marker)
        started = time.perf_counter()
        await publish(text)
        try:
            await asyncio.wait_for(done.wait(), 30)
        except asyncio.TimeoutError:
            raise RuntimeError(
                f"only {state['count']} of {expected} sockets got round {number}"
            ) from None
        latencies.append(state["last"] - started)
        if number == rounds - 1 and expected >= 100:
            log(f"  {rounds} rounds to {expected} sockets: last {latencies[-1] * 1000:.0f} ms")
        await asyncio.sleep(0.02)


async def connect_first_frame(url: str) -> float:
    from websockets.asyncio.client import connect

    started = time.perf_counter()
    ws = await connect(url, compression=None, proxy=None, open_timeout=30, ping_interval=None)
    await asyncio.wait_for(ws.recv(), 30)
    elapsed = time.perf_counter() - started
    await ws.close()
    return elapsed


async def interleaved_connects(urls: dict[str, str], samples: int) -> dict[str, list[float]]:
    """Sequential connect → first frame, alternating between the urls so drift hits all."""
    timings: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(3):  # warm-up: imports, pools, the database's caches
        for url in urls.values():
            await connect_first_frame(url)
    for _ in range(samples):
        for name, url in urls.items():
            timings[name].append(await connect_first_frame(url))
    return timings


# --- the run -----------------------------------------------------------------------------


@dataclass
class Run:
    profile: Profile
    seed: Seed
    logs: Path
    floor: Server
    floor_channel: str
    rows: list[Row] = field(default_factory=list)
    series: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def server_env(self, config: Config, prefix: str) -> dict[str, str]:
        return {
            **os.environ,
            "TEST_CHANNEL_LAYER": config.layer,
            "TEST_CHANNEL_LAYER_PREFIX": prefix,
            "BENCH_BARE_FRAME": str(self.logs / "bare-frame.json"),
            "PYTHONUNBUFFERED": "1",
        }

    def app_url(self, server: Server, vendor: str) -> str:
        return f"ws://127.0.0.1:{server.port}{WEBSOCKET_PATH}?token={self.seed.tokens[vendor]}"

    def bare_url(self, server: Server) -> str:
        from bench.asgi import BARE_PATH

        return f"ws://127.0.0.1:{server.port}{BARE_PATH}"

    def floor_url(self) -> str:
        return f"ws://127.0.0.1:{self.floor.port}/"


def use_layer(config: Config, prefix: str) -> Any:
    """Point this process's default channel layer at the server's, so services.notify() and
    delivery publish to it."""
    from channels.layers import channel_layers
    from django.utils.module_loading import import_string

    from tests.settings import channel_layer_config

    spec = channel_layer_config(config.layer, prefix=prefix)
    layer = import_string(spec["BACKEND"])(**spec["CONFIG"])
    channel_layers.set("default", layer)
    return layer


async def measure_config(run: Run, config: Config) -> None:
    """Connect, history, fan-out, per-vendor push and throughput on one server and layer."""
    from asgiref.sync import sync_to_async

    from bench.asgi import BARE_EVENT, BARE_GROUP
    from django_vendor_notifications import delivery, services

    profile, seed_ = run.profile, run.seed
    prefix = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    layer = use_layer(config, prefix)
    server = await asyncio.to_thread(start_asgi, config, run.server_env(config, prefix), run.logs)
    name = str(config)
    raw: dict[str, Any] = {}
    try:
        log(f"{name}: connect → first frame")
        timings = await interleaved_connects(
            {"app": run.app_url(server, "connect-100"), "bare": run.bare_url(server)},
            profile.connect_samples,
        )
        app, bare = report.summary_ms(timings["app"]), report.summary_ms(timings["bare"])
        raw["connect"] = {"app": app, "bare": bare}
        for q in ("p50", "p99"):
            run.rows.append(
                report.ratio_row(
                    f"connect → first frame, 100 unread ({q})",
                    name,
                    app[f"{q}_ms"],
                    bare[f"{q}_ms"],
                    1.5,
                    baseline_name="bare",
                    values={"app": app, "bare": bare},
                )
            )

        log(f"{name}: history and categories")
        timings = await interleaved_connects(
            {key: run.app_url(server, key) for key in HISTORY_VENDORS}, profile.history_samples
        )
        history = {key: report.summary_ms(value) for key, value in timings.items()}
        raw["history"] = history
        rows = f"{profile.history_rows:,}"
        for label, big, small in (
            (f"connect p50, {rows} vs 10 notifications, 1 category", "hist-big-1", "hist-10-1"),
            (
                f"connect p50, {rows} vs 10 notifications, 20 categories",
                "hist-big-20",
                "hist-10-20",
            ),
            (f"connect p50, 20 vs 1 categories, {rows} notifications", "hist-big-20", "hist-big-1"),
        ):
            run.rows.append(
                report.ratio_row(
                    label,
                    name,
                    history[big]["p50_ms"],
                    history[small]["p50_ms"],
                    1.2,
                    baseline_name=small.replace("big", rows),
                    goal="≤ 1.2",
                    values={"big": history[big], "small": history[small]},
                )
            )

        log(f"{name}: fan-out to {profile.fanout_sockets} sockets")
        template = seed_.fanout_template
        app_sockets = Sockets()
        await app_sockets.open(run.app_url(server, "fanout"), profile.fanout_sockets)

        async def app_publish(text: str) -> None:
            assert await delivery.asend_event(delivery.broadcast_group(), delivery.push_event(text))

        app_lat = report.summary_ms(
            await fanout_rounds(app_sockets, app_publish, template, profile.fanout_rounds)
        )
        floor_sockets = Sockets()
        await floor_sockets.open(run.floor_url(), profile.fanout_sockets)
        floor_lat = report.summary_ms(
            await fanout_rounds(
                floor_sockets, floor_publisher(run.floor_channel), template, profile.fanout_rounds
            )
        )
        await floor_sockets.close()
        bare_sockets = Sockets()
        await bare_sockets.open(run.bare_url(server), profile.fanout_sockets)

        async def bare_publish(text: str) -> None:
            await layer.group_send(BARE_GROUP, {"type": BARE_EVENT, "text": text})

        bare_lat = report.summary_ms(
            await fanout_rounds(bare_sockets, bare_publish, template, profile.fanout_rounds)
        )
        await bare_sockets.close()
        raw["fanout"] = {"app": app_lat, "bare": bare_lat, "floor": floor_lat}
        for q in ("p50", "p99"):
            run.rows.append(
                report.ratio_row(
                    f"broadcast to {profile.fanout_sockets:,} sockets ({q})",
                    name,
                    app_lat[f"{q}_ms"],
                    floor_lat[f"{q}_ms"],
                    3,
                    baseline_name="floor",
                    values={"app": app_lat, "bare": bare_lat, "floor": floor_lat},
                )
            )

        log(f"{name}: per-vendor push with {len(app_sockets)} idle sockets")
        push_sockets = Sockets()
        await push_sockets.open(run.app_url(server, "push"), 1)
        push_vendor = seed_.vendor_ids["push"]
        notify = sync_to_async(services.notify)

        async def push_publish(text: str) -> None:
            await notify(push_vendor, text, category="Order Notifications")

        push = await fanout_rounds(
            push_sockets, push_publish, "Order @@ROUND@@ placed.", profile.push_rounds
        )
        await push_sockets.close()
        push_lat = report.summary_ms(push)
        raw["push"] = push_lat
        run.rows.append(
            report.limit_row(
                f"notify() → vendor's socket, {len(app_sockets):,} idle open (p99)",
                name,
                push_lat["p99_ms"],
                50,
                unit="ms",
                baseline=f"p50 {push_lat['p50_ms']:.2f} ms",
                values=push_lat,
            )
        )
        await app_sockets.close()

        log(f"{name}: sustained throughput")
        tp = await throughput(run, server, config)
        raw["throughput"] = tp
        best = tp["best"]
        run.rows.append(
            report.limit_row(
                "sustained pushes/s, p99 ≤ 100 ms",
                name,
                best["delivered_per_s"] if best else 0,
                5000,
                unit="msgs/s",
                at_least=True,
                baseline=(f"{best['server_cpu_us_per_msg']:.1f} µs CPU/msg" if best else "none"),
                values=tp,
            )
        )
    finally:
        server.stop()
        with contextlib.suppress(Exception):
            await layer.flush()
    run.raw[name] = raw


def floor_publisher(channel: str) -> Callable[[str], Awaitable[Any]]:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)

    async def publish(text: str) -> None:
        await client.publish(channel, text)

    return publish


async def throughput(run: Run, server: Server, config: Config) -> dict[str, Any]:
    """Raise the push rate step by step until p99 exceeds 100 ms or delivery falls behind."""
    import psutil

    from django_vendor_notifications import delivery

    profile = run.profile
    sockets = Sockets()
    await sockets.open(run.app_url(server, "throughput"), profile.throughput_sockets)
    group = delivery.vendor_group(run.seed.vendor_ids["throughput"])
    base = run.seed.fanout_template
    me = psutil.Process()
    steps = []
    best = None
    for rate in profile.throughput_rates:
        latencies: list[float] = []
        last_at = [0.0]

        def on_frame(
            text: str, at: float, latencies: list[float] = latencies, last_at: list[float] = last_at
        ) -> None:
            start = text.find("@t")
            if start >= 0:
                latencies.append(at - float(text[start + 2 : text.find("@", start + 2)]))
                last_at[0] = at

        sockets.on_frame = on_frame
        publishes_per_s = rate / len(sockets)
        duration = profile.throughput_step_s
        cpu_before, mine_before = server.cpu_seconds(), me.cpu_times()
        started = time.perf_counter()
        sent = 0
        while (elapsed := time.perf_counter() - started) < duration:
            due = int(elapsed * publishes_per_s) + 1 - sent
            for _ in range(due):
                now = time.perf_counter()
                text = base.replace("@@ROUND@@", f"@t{now!r}@")
                await delivery.asend_event(group, delivery.push_event(text))
                sent += 1
            await asyncio.sleep(0.002)
        deadline = time.perf_counter() + 2
        while len(latencies) < sent * len(sockets) and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        cpu = server.cpu_seconds() - cpu_before
        mine = me.cpu_times()
        # From the first publish to the last frame received (at least the sending window).
        wall = max(duration, last_at[0] - started)
        expected = sent * len(sockets)
        step = {
            "offered_per_s": rate,
            "sent_per_s": expected / duration,
            "delivered": len(latencies),
            "expected": expected,
            "delivered_per_s": len(latencies) / wall,
            "server_cpu_us_per_msg": cpu / max(len(latencies), 1) * 1e6,
            "server_cpu_share": cpu / wall,
            "client_cpu_share": (mine.user + mine.system - mine_before.user - mine_before.system)
            / wall,
            **(report.summary_ms(latencies) if latencies else {}),
        }
        steps.append(step)
        log(
            f"  {rate:>6}/s offered: {step['delivered_per_s']:,.0f}/s delivered, "
            f"p99 {step.get('p99_ms', float('nan')):.1f} ms, "
            f"server CPU {step['server_cpu_share']:.0%}, client CPU {step['client_cpu_share']:.0%}"
        )
        kept_up = len(latencies) >= 0.98 * expected and step["sent_per_s"] >= 0.9 * rate
        if not latencies or step["p99_ms"] > 100 or not kept_up:
            break
        best = step
        await asyncio.sleep(0.3)
    sockets.on_frame = lambda text, at: None
    await sockets.close()
    return {"steps": steps, "best": best}


async def measure_scale(run: Run, config: Config) -> None:
    """RSS and fan-out latency while sockets open in steps: the app, bare Channels, the floor.

    Each kind gets a fresh process, so one's memory does not carry over to the next.
    """
    from bench.asgi import BARE_EVENT, BARE_GROUP
    from django_vendor_notifications import delivery

    profile = run.profile
    latency: dict[str, list[list[float]]] = {}
    memory: dict[str, list[list[float]]] = {}
    slopes: dict[str, float] = {}
    for kind in ("app", "bare", "floor"):
        prefix = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
        layer = use_layer(config, prefix)
        if kind == "floor":
            channel = f"{PREFIX}-floor-{uuid.uuid4().hex[:8]}"
            server = await asyncio.to_thread(
                start_floor, channel, run.logs / "bare-frame.json", run.logs
            )
            url = f"ws://127.0.0.1:{server.port}/"
            publish = floor_publisher(channel)
        else:
            server = await asyncio.to_thread(
                start_asgi, config, run.server_env(config, prefix), run.logs
            )
            if kind == "app":
                url = run.app_url(server, "fanout")

                async def publish(text: str) -> None:
                    await delivery.asend_event(
                        delivery.broadcast_group(), delivery.push_event(text)
                    )
            else:
                url = run.bare_url(server)

                async def publish(text: str, layer: Any = layer) -> None:
                    await layer.group_send(BARE_GROUP, {"type": BARE_EVENT, "text": text})

        sockets = Sockets()
        try:
            # A few sockets first, so imports and pools are not counted as per-socket memory.
            await sockets.open(url, 10)
            await fanout_rounds(sockets, publish, run.seed.fanout_template, 2)
            await sockets.close()
            await asyncio.sleep(0.5)
            memory[kind] = [[0, server.rss_mib()]]
            latency[kind] = []
            for target in profile.scale_steps:
                log(f"scale {kind}: {target} sockets")
                await sockets.open(url, target - len(sockets))
                await asyncio.sleep(0.5)
                memory[kind].append([target, server.rss_mib()])
                lat = report.summary_ms(
                    await fanout_rounds(
                        sockets, publish, run.seed.fanout_template, profile.scale_rounds
                    )
                )
                latency[kind].append([target, lat["p50_ms"], lat["p99_ms"]])
            slopes[kind] = report.slope(
                (n, mib * 1024) for n, mib in memory[kind] if n >= profile.scale_steps[0]
            )
        finally:
            await sockets.close()
            server.stop()
            with contextlib.suppress(Exception):
                await layer.flush()
    run.series["fanout_vs_sockets"] = latency
    run.series["rss_vs_sockets"] = memory
    first, last = profile.scale_steps[0], profile.scale_steps[-1]
    run.rows.append(
        report.limit_row(
            f"idle sockets: RSS slope {first:,}→{last:,}",
            str(config),
            slopes["app"],
            60,
            unit="KiB/socket",
            baseline=f"bare {slopes['bare']:.1f}, floor {slopes['floor']:.1f} KiB/socket",
            values={"slopes_kib_per_socket": slopes},
        )
    )
    at = {kind: points[-1] for kind, points in latency.items()}
    run.rows.append(
        report.ratio_row(
            f"broadcast to {last:,} sockets (p50)",
            str(config),
            at["app"][1],
            at["floor"][1],
            3,
            baseline_name="floor",
            values={"at_max": at},
        )
    )


async def measure_churn(run: Run, config: Config) -> None:
    from django_vendor_notifications import delivery  # noqa: F401 - the layer's settings

    profile = run.profile
    prefix = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    layer = use_layer(config, prefix)
    server = await asyncio.to_thread(start_asgi, config, run.server_env(config, prefix), run.logs)
    sockets = Sockets()
    try:
        await sockets.open(run.app_url(server, "fanout"), 10)
        await sockets.close()
        await asyncio.sleep(0.5)
        rss = [server.rss_mib()]
        for _ in range(profile.churn_cycles):
            await sockets.open(run.app_url(server, "fanout"), profile.churn_sockets)
            await sockets.close()
            await asyncio.sleep(0.3)
            rss.append(server.rss_mib())
        log(f"churn: RSS {rss[0]:.1f} → {rss[1]:.1f} (after cycle 1) → {rss[-1]:.1f} MiB")
    finally:
        server.stop()
        with contextlib.suppress(Exception):
            await layer.flush()
    growth = (rss[-1] - rss[1]) / rss[1] * 100
    run.series["rss_churn"] = {"app": [[i, value] for i, value in enumerate(rss)]}
    run.rows.append(
        report.limit_row(
            f"{profile.churn_cycles} cycles of {profile.churn_sockets} connects/disconnects: RSS "
            "growth after cycle 1",
            str(config),
            growth,
            10,
            unit="%",
            baseline=f"{rss[1]:.1f} → {rss[-1]:.1f} MiB (cold start {rss[0]:.1f})",
            values={"rss_mib": rss, "growth_from_cold_pct": (rss[-1] - rss[0]) / rss[0] * 100},
        )
    )


# --- query counts, in this process ---------------------------------------------------------


async def count_queries(run: Run) -> None:
    """Queries per connect, mark_read and load_more through the real consumer, in-process."""
    from channels.db import database_sync_to_async
    from channels.layers import InMemoryChannelLayer, channel_layers
    from channels.testing import WebsocketCommunicator
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.asgi import application

    channel_layers.set("default", InMemoryChannelLayer())

    class WorkerQueries:
        """CaptureQueriesContext in the thread database_sync_to_async runs in."""

        async def __aenter__(self) -> WorkerQueries:
            self.context = CaptureQueriesContext(connection)
            await database_sync_to_async(self.context.__enter__)()
            return self

        async def __aexit__(self, *exc_info: object) -> None:
            await database_sync_to_async(self.stop)()

        def stop(self) -> None:
            # The connection is per thread: read what it captured in the same thread.
            self.context.__exit__(None, None, None)
            self.count = len(self.context.captured_queries)

    counts: dict[str, dict[str, int]] = {}
    for vendor in ("hist-10-1", "hist-big-20", "connect-100"):
        communicator = WebsocketCommunicator(
            application, f"{WEBSOCKET_PATH}?token={run.seed.tokens[vendor]}"
        )
        result: dict[str, int] = {}
        async with WorkerQueries() as queries:
            connected, _ = await communicator.connect(timeout=10)
            assert connected
            await communicator.receive_from(timeout=10)
        result["connect"] = queries.count
        for action, message in (
            ("mark_read", {"action": "mark_read", "notification_id": run.seed.unread_id}),
            ("load_more", {"action": "load_more", "page": 2}),
        ):
            async with WorkerQueries() as queries:
                await communicator.send_json_to(message)
                await communicator.receive_from(timeout=10)
            result[action] = queries.count
        await communicator.disconnect()
        counts[vendor] = result
    run.raw["queries"] = counts
    for action in ("connect", "mark_read", "load_more"):
        values = {vendor: result[action] for vendor, result in counts.items()}
        constant = len(set(values.values())) == 1
        limit = 3 if action == "connect" else None
        top = max(values.values())
        run.rows.append(
            Row(
                scenario=f"DB queries per {action}",
                config="in-process",
                measured=" / ".join(str(value) for value in values.values()),
                baseline=f"10 rows / {run.profile.history_rows:,} rows / 200 rows",
                ratio=top / limit if limit else None,
                goal="constant" + (", ≤ 3" if limit else ""),
                passed=constant and (limit is None or top <= limit),
                values=values,
            )
        )
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


# --- machine -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    def run(*command: str) -> str:
        with contextlib.suppress(Exception):
            return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
        return ""

    lscpu = run("lscpu")
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    pick = (
        "Architecture",
        "CPU(s)",
        "Model name",
        "Thread(s) per core",
        "Core(s) per socket",
        "CPU max MHz",
        "L2 cache",
        "L3 cache",
        "Hypervisor vendor",
    )
    redis_info = run("redis-cli", "-u", REDIS_URL, "INFO", "server")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    return {
        "lscpu": {key: fields[key].strip() for key in pick if key in fields},
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            name: version(name)
            for name in (
                "django",
                "channels",
                "channels-redis",
                "redis",
                "daphne",
                "twisted",
                "autobahn",
                "uvicorn",
                "websockets",
                "psycopg",
                "djangorestframework-simplejwt",
            )
        },
        "redis_server": next(
            (
                line.split(":", 1)[1].strip()
                for line in redis_info.splitlines()
                if line.startswith("redis_version:")
            ),
            "?",
        ),
        "postgresql": postgres,
    }


# --- main --------------------------------------------------------------------------------


async def main_async(profile: Profile, args: argparse.Namespace) -> dict[str, Any]:
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    started = time.monotonic()
    await asyncio.to_thread(ensure_database)
    seed_ = await asyncio.to_thread(seed, profile.history_rows)
    from django.db import connections

    await asyncio.to_thread(connections.close_all)
    logs = Path(tempfile.mkdtemp(prefix=f"vn-bench-{profile.name}-"))
    (logs / "bare-frame.json").write_text(seed_.bare_frame, encoding="utf-8")
    floor_channel = f"{PREFIX}-floor-{uuid.uuid4().hex[:8]}"
    floor = await asyncio.to_thread(start_floor, floor_channel, logs / "bare-frame.json", logs)
    run = Run(profile, seed_, logs, floor, floor_channel)
    try:
        await count_queries(run)
        for config in profile.configs:
            await measure_config(run, config)
    finally:
        floor.stop()
    scale_config = profile.configs[0]
    await measure_scale(run, scale_config)
    await measure_churn(run, scale_config)
    info = await asyncio.to_thread(machine)
    log(f"server logs: {logs}")
    return report.results_document(
        name=profile.name,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        machine=info,
        params={
            **asdict(profile),
            "scale_config": str(scale_config),
            "connect_concurrency": CONNECT_CONCURRENCY,
            "raw": run.raw,
        },
        rows=run.rows,
        series=run.series,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--quick", action="store_const", dest="profile", const="quick")
    which.add_argument("--full", action="store_const", dest="profile", const="full")
    parser.add_argument(
        "--charts", type=Path, default=None, help="draw the PNG charts into this directory"
    )
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Servers inherit this: each socket is a descriptor on both sides.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {CLIENT_CORE})
    document = asyncio.run(main_async(profile, args))
    path = RESULTS / f"{profile.name}.json"
    report.write(document, path)
    if args.charts:
        for chart in report.charts(document, args.charts):
            log(f"chart: {chart}")
    print()
    print(report.markdown_table([Row(**row) for row in document["rows"]]))
    print(f"\n{profile.name}: {document['duration_s']:.0f} s; results in {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
