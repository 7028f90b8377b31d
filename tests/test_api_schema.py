"""Schemathesis against the API's own OpenAPI schema: generated requests (valid and not)
to every operation never get a 5xx, and every response matches the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import openapi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from encoder import Encoder
from tests.api_fixtures import ApiWorld, build_world

# Starting runs spawns whole monitor cycles on threads; they have their own tests.
SKIPPED = ("/v1/crawl", "/v1/monitor/once")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path, tiny_encoder: Encoder
) -> Iterator[ApiWorld]:
    folder = tmp_path_factory.mktemp("api-schema")
    built = build_world(
        f"sqlite:///{folder / 'simmim.db'}", folder / "data", tiny_weights, tiny_encoder
    )
    with built.client:
        yield built
    built.engine.dispose()


CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_5xx_and_every_response_matches_the_schema(world: ApiWorld) -> None:
    """Each operation gets a handful of generated cases (positive and negative); the
    failures of all operations are reported together."""
    schema = openapi.from_asgi("/openapi.json", world.client.app)
    failures: list[str] = []
    operations = 0
    calls: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        operations += 1

        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,  # the same examples every run: a failure reproduces
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def exercise(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call_and_validate(headers={**world.admin}, checks=CHECKS)
            calls.append(response.status_code)

        try:
            exercise()
        except Exception as exc:  # a FailureGroup, with the request that caused it
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20 and len(calls) >= 3 * operations, (operations, len(calls))
    assert not failures, "\n\n".join(failures)
