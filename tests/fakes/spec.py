"""Validate JSON bodies against the GA4GH WES OpenAPI spec kept in ``../shared/wes-spec``.

The spec is not part of this repository: it lives in ``shared/`` next to the project
(``<repo root>/../shared/wes-spec``). Tests that need it call :func:`require_shared` first,
which skips the test when the directory is absent, or fails it when ``CI=true``.

Every ``$ref`` is resolved locally: the spec document is registered under its ``file:`` URI, and the
``ServiceInfo`` schema's remote reference to the GA4GH service-info spec is answered with the copy in
``wes-spec/ga4gh-service-info-1.0.0.yaml``. Nothing is fetched from the network.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = [
    "SERVICE_INFO_URL",
    "SpecViolation",
    "load_spec",
    "repo_root",
    "require_shared",
    "response_schema",
    "shared_dir",
    "spec_errors",
    "spec_path",
    "validate_response",
]

SPEC_FILE = "workflow_execution_service-1.1.0.openapi.yaml"
SERVICE_INFO_FILE = "ga4gh-service-info-1.0.0.yaml"
#: The remote document that the 1.1.0 ServiceInfo schema refers to; served from the local copy.
SERVICE_INFO_URL = "https://raw.githubusercontent.com/ga4gh-discovery/ga4gh-service-info/v1.0.0/service-info.yaml"


class SpecViolation(AssertionError):
    """A body that does not match the response schema the spec declares for it."""


def repo_root() -> Path:
    """The project's root: the parent of ``tests/``."""
    return Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``shared/`` next to the project (it may not exist)."""
    return repo_root().parent / "shared"


def spec_path() -> Path | None:
    """The WES 1.1.0 OpenAPI file, or None when ``../shared/wes-spec`` is not there."""
    path = shared_dir() / "wes-spec" / SPEC_FILE
    return path if path.is_file() else None


def require_shared() -> Path:
    """Return the spec's path; skip the calling test without it (fail it instead when ``CI=true``)."""
    path = spec_path()
    if path is None:
        message = "../shared/wes-spec not found next to the project: spec validation needs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@functools.cache
def load_spec() -> dict[str, Any]:
    """The parsed WES 1.1.0 spec. Raises FileNotFoundError when it is absent."""
    path = spec_path()
    if path is None:
        raise FileNotFoundError(f"{shared_dir() / 'wes-spec' / SPEC_FILE} not found")
    with path.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    path = spec_path()
    if path is None:
        raise FileNotFoundError(f"{shared_dir() / 'wes-spec' / SPEC_FILE} not found")
    with (path.parent / SERVICE_INFO_FILE).open(encoding="utf-8") as handle:
        service_info = yaml.safe_load(handle)
    return Registry().with_resources(
        [
            (path.as_uri(), DRAFT4.create_resource(load_spec())),
            (SERVICE_INFO_URL, DRAFT4.create_resource(service_info)),
        ]
    )


def _absolute_refs(node: Any, base: str) -> Any:
    """Copy ``node`` with every local ``$ref`` ("#/...") made absolute against ``base``."""
    if isinstance(node, dict):
        return {
            key: (
                base + value
                if key == "$ref" and isinstance(value, str) and value.startswith("#")
                else _absolute_refs(value, base)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(item, base) for item in node]
    return copy.copy(node)


def response_schema(path_template: str, method: str, status: int) -> dict[str, Any] | None:
    """The JSON schema the spec declares for this answer, or None when the status is not declared.

    ``path_template`` is the spec's key, e.g. ``/runs/{run_id}/status``. Raises KeyError for an
    operation the spec does not have.
    """
    operation = load_spec()["paths"][path_template][method.lower()]
    responses: dict[Any, Any] = operation["responses"]
    response = responses.get(status, responses.get(str(status), responses.get("default")))
    if response is None:
        return None
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    path = spec_path()
    assert path is not None
    result: dict[str, Any] = _absolute_refs(schema, path.as_uri())
    return result


@functools.cache
def _validator(path_template: str, method: str, status: int) -> Any:
    schema = response_schema(path_template, method, status)
    if schema is None:
        return None
    return OAS30Validator(schema, registry=_registry(), format_checker=OAS30Validator.FORMAT_CHECKER)


def spec_errors(path_template: str, method: str, status: int, body: Any) -> list[str]:
    """Every way ``body`` breaks the spec for this answer; empty when it conforms.

    A status the spec does not declare for the operation is itself an error.
    """
    try:
        validator = _validator(path_template, method.lower(), status)
    except KeyError:
        return [f"the spec has no operation {method.upper()} {path_template}"]
    if validator is None:
        return [f"the spec declares no JSON answer with status {status} for {method.upper()} {path_template}"]
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    return [f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}" for error in errors]


def validate_response(path_template: str, method: str, status: int, body: Any) -> None:
    """Raise :class:`SpecViolation` unless ``body`` conforms to the spec for this answer."""
    errors = spec_errors(path_template, method, status, body)
    if errors:
        raise SpecViolation(f"{method.upper()} {path_template} -> {status}: " + "; ".join(errors))
