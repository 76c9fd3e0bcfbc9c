"""The shipped migration matches the models and points at the host's vendor model."""

from __future__ import annotations

import importlib
from io import StringIO
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, migrations
from django.db.migrations.executor import MigrationExecutor

from django_vendor_notifications.models import Notification
from tests.conftest import vendor_settings
from tests.testapp.models import Vendor

MIGRATION = "django_vendor_notifications.migrations.0001_initial"


def vendor_field(module: ModuleType) -> Any:
    [create] = [op for op in module.Migration.operations if isinstance(op, migrations.CreateModel)]
    return dict(create.fields)["vendor"]


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    out = StringIO()
    # --check exits with status 1 (SystemExit) when a model change has no migration.
    call_command(
        "makemigrations",
        "django_vendor_notifications",
        "testapp",
        check=True,
        dry_run=True,
        stdout=out,
    )
    assert "No changes detected" in out.getvalue()


def test_foreign_key_targets_configured_vendor_model() -> None:
    module = importlib.import_module(MIGRATION)
    assert vendor_field(module).remote_field.model == "testapp.Vendor"
    assert ("testapp", "__first__") in module.Migration.dependencies
    assert Notification._meta.get_field("vendor").related_model is Vendor


def test_migration_follows_the_setting() -> None:
    module = importlib.import_module(MIGRATION)
    try:
        with vendor_settings(VENDOR_MODEL="shop.Seller"):
            importlib.reload(module)
            assert vendor_field(module).remote_field.model == "shop.Seller"
            assert ("shop", "__first__") in module.Migration.dependencies
    finally:
        importlib.reload(module)
    assert vendor_field(module).remote_field.model == "testapp.Vendor"


@pytest.mark.django_db
def test_migrated_table_references_vendor_table_and_has_indexes() -> None:
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        relations = connection.introspection.get_relations(cursor, table)
        constraints = connection.introspection.get_constraints(cursor, table)
    # Django 6.1 adds the on_delete action as a third element.
    assert relations["vendor_id"][:2] == ("id", Vendor._meta.db_table)
    assert {"vn_vendor_unread_idx", "vn_vendor_history_idx"} <= set(constraints)


APP = "django_vendor_notifications"


def index_sql(name: str) -> str:
    """The CREATE INDEX statement of ``name`` as the database keeps it ("" when missing)."""
    query = {
        "sqlite": "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s",
        "postgresql": "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(query, [name])
        row = cursor.fetchone()
    return str(row[0]) if row else ""


def columns() -> set[str]:
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(
            cursor, Notification._meta.db_table
        )
    return {column.name for column in description}


@pytest.mark.django_db(transaction=True)
def test_0003_adds_archived_at_and_keeps_archived_rows_out_of_the_unread_indexes() -> None:
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes(APP)
    try:
        executor.migrate([(APP, "0002_vendor_id_index")])
        assert "archived_at" not in columns()
        assert "archived_at" not in index_sql("vn_vendor_unread_idx")
        assert index_sql("vn_vendor_unread_category_idx") == ""

        executor = MigrationExecutor(connection)
        executor.migrate([(APP, "0003_archived_at")])
        assert "archived_at" in columns()
        for name in ("vn_vendor_unread_idx", "vn_vendor_unread_category_idx"):
            sql = index_sql(name)
            # Partial on both conditions: an archived row is in neither index.
            assert "WHERE" in sql.upper()
            assert "archived_at" in sql
            assert "is_read" in sql
    finally:
        MigrationExecutor(connection).migrate(leaf)
    assert "archived_at" in columns()
