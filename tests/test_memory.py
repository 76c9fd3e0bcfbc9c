"""memory.trim_freed_memory: glibc's malloc_trim on a thread of its own, once per process.

What it is for is measured by the soak (tests/e2e/test_soak.py, `make soak`): RSS flat after
the warm-up with it, rising about 1.5 MiB a minute without it while the memory in use is flat.
"""

from __future__ import annotations

import platform
import threading

import pytest

from django_vendor_notifications import memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")


@glibc
def test_malloc_trim_is_callable_on_glibc() -> None:
    trim = memory.malloc_trim()
    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was released


@glibc
def test_one_trimming_thread_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_started", None)
    trimmed, parked = threading.Event(), threading.Event()

    def trim() -> int:
        trimmed.set()
        parked.wait()  # the daemon thread stays here: no more calls for the session
        return 0

    monkeypatch.setattr(memory, "malloc_trim", lambda: trim)
    assert memory.trim_freed_memory(interval=0.01)
    first = memory._started
    assert memory.trim_freed_memory(interval=0.01)
    assert memory._started is first and first is not None and first.daemon
    assert trimmed.wait(2)


def test_no_trimming_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_started", None)
    monkeypatch.setattr(memory, "malloc_trim", lambda: None)
    assert memory.trim_freed_memory() is False
    assert memory._started is None
