"""Runs the browser client's unit tests (``tests/js/``) with Node's built-in test runner.

They drive ``client.js`` against a fake WebSocket, so they need Node (18 or later) and nothing
else: no browser, no server, no npm packages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
JS_TESTS = REPOSITORY_ROOT / "tests" / "js"


def test_client_js_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript client's unit tests need Node 18+")
    files = sorted(str(path.relative_to(REPOSITORY_ROOT)) for path in JS_TESTS.glob("*.test.mjs"))
    assert files, f"no *.test.mjs files in {JS_TESTS}"
    # The files by name, not the directory: Node 21+ reads --test arguments as glob patterns.
    result = subprocess.run(
        [node, "--test", *files],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"node --test {' '.join(files)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    )
