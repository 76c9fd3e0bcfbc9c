"""The hosted CI workflow runs every step of .ci/run, and `make help` names every target."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))


def workflow_commands() -> str:
    return "\n".join(
        step.get("run", "") for job in WORKFLOW["jobs"].values() for step in job["steps"]
    )


def test_every_make_step_of_ci_run_is_in_the_workflow() -> None:
    steps = re.findall(r"^(?:[A-Z_]+=\S+ )*make ([a-z-]+)(?: (\S+=\S+))?", CI_RUN, re.M)
    assert steps, ".ci/run runs no make target?"
    commands = workflow_commands()
    for target, argument in steps:
        expected = f"make {target}" + (f" {argument}" if argument else "")
        assert expected in commands, f".github/workflows/ci.yml does not run `{expected}`"


def test_the_browser_test_is_in_the_workflow() -> None:
    assert "-m browser" in CI_RUN
    assert "REQUIRE_BROWSER_TEST=1" in workflow_commands()
    assert "-m browser" in workflow_commands()


def test_the_tox_envs_of_ci_run_are_the_workflow_matrix() -> None:
    [envs] = re.findall(r"tox run -e (\S+)", CI_RUN)
    matrix = [entry["env"] for entry in WORKFLOW["jobs"]["tox"]["strategy"]["matrix"]["include"]]
    assert matrix == envs.split(",")


def test_make_help_names_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = " ".join(re.findall(r"^\.PHONY:((?:.*\\\n)*.*)$", makefile, re.M))
    targets = set(phony.replace("\\", " ").split())
    help_text = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    named = set(re.findall(r"make ([a-z-]+)", help_text))
    assert targets - named == set(), f"make help does not name {sorted(targets - named)}"
