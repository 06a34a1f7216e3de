"""Values as the Durable extension hands them back: JSON text, sometimes encoded twice."""

import json
from typing import Any


def decode_durable_json(value: Any) -> Any:
    """Unwrap JSON text however often it was encoded; other strings come back unchanged."""
    while isinstance(value, str):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            return value
        if not isinstance(decoded, str | list | dict):
            return value
        value = decoded
    return value


def decode_object(value: Any) -> dict[str, Any]:
    """A JSON object from a durable value, or {} when it is not one."""
    decoded = decode_durable_json(value)
    return decoded if isinstance(decoded, dict) else {}
