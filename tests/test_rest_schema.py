"""The HTTP API's OpenAPI document: drf-spectacular builds it without a warning, it is valid
OpenAPI 3, and it says what the views answer (tests/e2e/test_rest_e2e.py checks the answers
against it on a real server)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import yaml
from django.core.management import call_command

from tests.e2e.test_rest_e2e import OPERATIONS


def schema() -> dict[str, Any]:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    document = yaml.safe_load(out.getvalue())
    assert isinstance(document, dict)
    return document


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for path, item in document["paths"].items()
        if path.startswith("/api/notifications/")
        for operation in item.values()
    }


def test_every_endpoint_is_described_with_its_refusals() -> None:
    described = operations(schema())
    assert set(described) == OPERATIONS
    for name, operation in described.items():
        assert {"200", "400", "401", "403", "404", "429"} <= set(operation["responses"]), name
        assert operation["security"] == [{"jwtAuth": []}], name


def test_the_polled_endpoints_document_etags_and_304() -> None:
    described = operations(schema())
    for name in ("notifications_unread", "notifications_counts"):
        responses = described[name]["responses"]
        assert "ETag" in responses["200"]["headers"]
        assert "content" not in responses["304"]
        parameters = {parameter["name"] for parameter in described[name]["parameters"]}
        assert {"If-None-Match", "vendor"} <= parameters


def test_items_carry_the_spec_names() -> None:
    document = schema()
    unread = operations(document)["notifications_unread"]["responses"]["200"]
    body = unread["content"]["application/json"]["schema"]
    item = body["properties"]["notifications"]["additionalProperties"]["items"]
    assert {"readed_at", "context_data", "created_at"} <= set(item["required"])
