"""What the published distributions hold, and the metadata that must agree with the matrix.

The build tests need ``build`` (the ``dev`` extra has it); where it is missing (the tox envs)
they are skipped, and ``.ci/run`` runs them with ``REQUIRE_PACKAGING_TEST=1`` so that a skip
fails there instead of hiding a broken package.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

import django_vendor_notifications

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "django-vendor-notifications"
DOCS_SITE = "https://django-vendor-notifications.github.io/django-vendor-notifications/"

pytestmark = pytest.mark.packaging


def build_installed() -> bool:
    try:
        importlib.metadata.version("build")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Installed, not just importable: `make docs` leaves a build/ directory in the checkout,
    # which Python would import as a namespace package named "build".
    if not build_installed():
        if os.environ.get("REQUIRE_PACKAGING_TEST"):
            pytest.fail("REQUIRE_PACKAGING_TEST is set but `build` is not installed")
        pytest.skip("needs `build` (pip install -e '.[dev]')")
    outdir = tmp_path_factory.mktemp("dist")
    # The default build makes the sdist, then the wheel from the sdist: the wheel test below
    # therefore also proves that the sdist builds.
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return outdir


def wheel_names(dist: Path) -> set[str]:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def sdist_names(dist: Path) -> set[str]:
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        # Without the "name-version/" directory every member sits in.
        return {str(PurePosixPath(*PurePosixPath(name).parts[1:])) for name in archive.getnames()}


def test_wheel_holds_the_app_and_nothing_else(dist: Path) -> None:
    names = wheel_names(dist)
    info = f"django_vendor_notifications-{django_vendor_notifications.__version__}.dist-info"
    for required in (
        "django_vendor_notifications/py.typed",
        "django_vendor_notifications/migrations/0001_initial.py",
        "django_vendor_notifications/static/django_vendor_notifications/client.js",
        "django_vendor_notifications/static/django_vendor_notifications/client.d.ts",
        "django_vendor_notifications/management/commands/send_notification.py",
        # The digest's templates, which a host overrides by path.
        "django_vendor_notifications/templates/django_vendor_notifications/digest/body.txt",
        "django_vendor_notifications/templates/django_vendor_notifications/digest/body.html",
        "django_vendor_notifications/templates/django_vendor_notifications/digest/subject.txt",
        f"{info}/licenses/LICENSE",
    ):
        assert required in names, f"the wheel lacks {required}"
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"django_vendor_notifications", info}
    unwanted = [
        name
        for name in names
        if re.search(r"(^|/)(tests?|bench|example_project|build|__pycache__)/|\.py[co]$", name)
    ]
    assert not unwanted, f"the wheel holds {unwanted}"


def test_wheel_has_every_migration(dist: Path) -> None:
    migrations = ROOT / "django_vendor_notifications" / "migrations"
    expected = {
        f"django_vendor_notifications/migrations/{path.name}" for path in migrations.glob("*.py")
    }
    assert expected <= wheel_names(dist)


def test_sdist_holds_the_whole_test_suite(dist: Path) -> None:
    names = sdist_names(dist)
    tracked = subprocess.run(
        ["git", "ls-files", "tests", "docs", "example_project", "bench"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout (an unpacked sdist, say): nothing to compare with")
    missing = sorted(set(tracked) - names)
    assert not missing, f"the sdist lacks {missing}"
    for required in ("LICENSE", "README.md", "CHANGELOG.md", "tox.ini", "pyproject.toml"):
        assert required in names
    caches = [name for name in names if re.search(r"__pycache__|\.py[co]$|\.sqlite3", name)]
    assert not caches, f"the sdist holds {caches}"


def test_sdist_test_suite_runs(dist: Path, tmp_path: Path) -> None:
    """Unpacked, the sdist collects the same suite as this checkout and a part of it passes."""
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    [tree] = tmp_path.iterdir()
    # SQLite and an own name: never the database the enclosing run is using.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["TEST_DB_SUFFIX"] = f"{os.environ.get('TEST_DB_SUFFIX', '')}_sdist"

    def pytest_in(directory: Path, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    def collected(output: str) -> str:
        [line] = re.findall(r"^\d+(?:/\d+)? tests? collected.*$", output, re.M)
        return line.split(" in ")[0]

    assert collected(pytest_in(tree, "--collect-only")) == collected(
        pytest_in(ROOT, "--collect-only")
    )
    # The unpacked tree's own package is the one imported (pythonpath "." in pyproject).
    output = pytest_in(tree, "tests/test_checks.py", "tests/test_docs.py", "tests/test_asyncapi.py")
    assert " passed" in output


def test_version_comes_from_the_installed_metadata() -> None:
    assert django_vendor_notifications.__version__ == importlib.metadata.version(DISTRIBUTION)


def test_changelog_has_a_heading_for_the_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    version = re.escape(django_vendor_notifications.__version__)
    assert re.search(rf"^## \[{version}\]", changelog, re.M), (
        f"CHANGELOG.md has no '## [{django_vendor_notifications.__version__}]' heading"
    )


def tox_matrix() -> list[tuple[list[str], list[str]]]:
    """tox.ini's env_list as (Python versions, Django versions) pairs: (["3.10"], ["4.2"])."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    envs = " ".join(config["tox"]["env_list"].split())
    return [
        ([f"{p[0]}.{p[1:]}" for p in pys.split(",")], [f"{d[0]}.{d[1:]}" for d in djs.split(",")])
        for pys, djs in re.findall(r"py\{?([\d,]+)\}?-django\{?([\d,]+)\}?", envs)
    ]


def tox_factors() -> tuple[set[str], set[str]]:
    """The Python and Django versions tox.ini's env_list runs, as "3.10" and "4.2"."""
    pythons: set[str] = set()
    djangos: set[str] = set()
    for pys, djs in tox_matrix():
        pythons.update(pys)
        djangos.update(djs)
    return pythons, djangos


def test_classifiers_match_the_tox_matrix() -> None:
    metadata = importlib.metadata.metadata(DISTRIBUTION)
    classifiers = metadata.get_all("Classifier") or []
    pythons, djangos = tox_factors()
    assert {c.rsplit(" :: ", 1)[1] for c in classifiers if "Python :: 3." in c} == pythons
    assert {c.rsplit(" :: ", 1)[1] for c in classifiers if "Django :: " in c} == djangos


def test_dependency_ranges_are_bounded_by_the_tox_matrix() -> None:
    from packaging.requirements import Requirement

    requirements = {
        requirement.name.lower(): requirement
        for requirement in map(Requirement, importlib.metadata.requires(DISTRIBUTION) or [])
        if requirement.marker is None
    }
    _, djangos = tox_factors()
    newest = max(djangos, key=lambda version: tuple(map(int, version.split("."))))
    oldest = min(djangos, key=lambda version: tuple(map(int, version.split("."))))
    django = requirements["django"].specifier
    assert django.contains(f"{newest}.99") and django.contains(f"{oldest}.0")
    major, minor = map(int, newest.split("."))
    assert not django.contains(f"{major}.{minor + 1}"), "Django's upper bound passes the matrix"
    for name in ("django", "channels", "djangorestframework", "djangorestframework-simplejwt"):
        assert any(spec.operator == "<" for spec in requirements[name].specifier), name


def test_project_urls_are_absolute() -> None:
    urls = importlib.metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    labels = {url.split(",", 1)[0].strip().lower() for url in urls}
    assert {"documentation", "changelog", "issues", "source"} <= labels
    assert all(url.split(",", 1)[1].strip().startswith("https://") for url in urls)


def test_readme_links_work_on_a_registry_page() -> None:
    """The README becomes the package page, where a relative link is dead."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    relative = [
        target
        for target in re.findall(r"\]\(([^)\s]+)\)", readme)
        if not target.startswith(("https://", "http://", "#", "mailto:"))
    ]
    assert not relative, f"README.md links relatively to {relative}"
    pages = re.findall(rf"\]\({re.escape(DOCS_SITE)}([a-z-]*)/?(?:#[^)]*)?\)", readme)
    assert pages
    for page in pages:
        assert (ROOT / "docs" / f"{page or 'index'}.md").is_file(), f"no docs page for {page!r}"


def test_the_support_table_is_the_tox_matrix() -> None:
    """docs/installation.md's Django x Python table states what tox runs, no more, no less."""
    tested: dict[str, set[str]] = {}
    for pys, djs in tox_matrix():
        for dj in djs:
            # The docs speak of Django 6 as "6.x": every 6 minor tox runs.
            series = "6.x" if dj.startswith("6.") else dj
            tested.setdefault(series, set()).update(pys)
    guide = (ROOT / "docs" / "installation.md").read_text(encoding="utf-8")
    table = {
        django: {version.strip() for version in pythons.split(",")}
        for django, pythons in re.findall(r"^\| (\d\.(?:\d|x)) \| ([\d., ]+) \|$", guide, re.M)
    }
    assert table == tested
    pythons = sorted(set().union(*tested.values()), key=lambda v: tuple(map(int, v.split("."))))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Python {pythons[0]}–{pythons[-1]}" in readme
    assert f"Python {pythons[0]}–{pythons[-1]}" in guide
