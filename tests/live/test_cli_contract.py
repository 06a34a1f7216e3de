"""The client's copies of the API's models and routes against the running app's own
document, GET /api/openapi.json: when the API changes a field (type, bound, default,
whether it is required), a route, a success status or a query parameter, this fails until
clients/python changes to match. The client never imports the app, so this is what keeps
the two from drifting."""

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field
from scheduler_client.client import OPERATIONS
from scheduler_client.models import ANSWER_MODELS, REQUEST_MODELS, RetryPolicy

from tests.support.cli import CliHost

# Fixtures: the app as run-local.sh configures it, and `scheduler receive` running.
from tests.support.cli import cli_host as cli_host

pytestmark = pytest.mark.live

# What a field's schema says that a client must agree with; titles and descriptions are prose.
COMPARED = (
    "type", "enum", "const", "format", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "default",
)  # fmt: skip


def shape(schema: Any) -> Any:
    """The parts of a JSON schema that matter to a client, references by component name and
    alternatives in a stable order."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return {"ref": schema["$ref"].rsplit("/", 1)[1]}
    kept: dict[str, Any] = {name: schema[name] for name in COMPARED if name in schema}
    for alternatives in ("anyOf", "oneOf"):
        if alternatives in schema:
            kept["anyOf"] = sorted(
                (shape(option) for option in schema[alternatives]),
                key=lambda option: json.dumps(option, sort_keys=True),
            )
    if "items" in schema:
        kept["items"] = shape(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        kept["additionalProperties"] = shape(schema["additionalProperties"])
    if "properties" in schema:
        kept["properties"] = {name: shape(field) for name, field in schema["properties"].items()}
        kept["required"] = sorted(schema.get("required", []))
    return kept


def client_shape(model: type[BaseModel], mode: str) -> Any:
    return shape(
        model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def document(cli_host: CliHost) -> dict[str, Any]:
    answer = httpx.get(f"{cli_host.base_url}/api/openapi.json", trust_env=False, timeout=30)
    assert answer.status_code == 200
    loaded: dict[str, Any] = answer.json()
    return loaded


@pytest.mark.parametrize(
    ("model", "mode"),
    [(model, "validation") for model in REQUEST_MODELS]
    + [(model, "serialization") for model in ANSWER_MODELS],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_each_client_model_is_the_apps_component_of_that_name(
    document: dict[str, Any], model: type[BaseModel], mode: str
) -> None:
    component = document["components"]["schemas"][model.__name__]
    assert client_shape(model, mode) == shape(component)


def test_the_comparison_sees_a_changed_bound() -> None:
    """The check above can fail: one bound changed is a difference."""

    class RetryPolicyDrifted(RetryPolicy):
        max_attempts: int = Field(default=1, ge=1, le=11)

    assert client_shape(RetryPolicyDrifted, "validation") != client_shape(RetryPolicy, "validation")


def test_each_route_the_client_calls_is_the_apps_operation(document: dict[str, Any]) -> None:
    operations = {
        found["operationId"]: (method.upper(), path, found)
        for path, methods in document["paths"].items()
        for method, found in methods.items()
    }
    assert set(OPERATIONS) <= set(operations), set(OPERATIONS) - set(operations)
    for operation_id, operation in OPERATIONS.items():
        method, path, found = operations[operation_id]
        assert (operation.method, operation.path) == (method, path), operation_id
        success = {int(status) for status in found["responses"] if status.startswith("2")}
        assert success == {operation.status}, operation_id
        answer = found["responses"][str(operation.status)]["content"]["application/json"]
        assert answer["schema"] == {"$ref": f"#/components/schemas/{operation.answer.__name__}"}
        query = {p["name"] for p in found.get("parameters", []) if p["in"] == "query"}
        sent = set()
        if operation.query is not None:
            sent = {field.alias or name for name, field in operation.query.model_fields.items()}
        assert sent == query, operation_id
        if operation.body is not None:
            body = found["requestBody"]["content"]["application/json"]["schema"]
            assert operation.body.__name__ in json.dumps(body), operation_id
