"""Schemathesis over the OpenAPI schema: generated requests never get a 5xx, and every
JSON error carries a message."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")


def test_no_server_errors(settings: Any) -> None:
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    from muselab.studio.app import create_app

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    tested = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith("/events"):  # the stream stays open until its job ends
            continue

        @given(case=op.as_strategy())
        @hypothesis_settings(max_examples=8, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call()
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.text}"
            if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                assert response.json()["error"], where

        check()
        tested.append(f"{op.method.upper()} {op.path}")
    assert len(tested) >= 25, tested
