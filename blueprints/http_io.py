"""Reading requests and writing responses, with every error as problem details."""

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec
from urllib.parse import urlsplit

import azure.functions as func

from scheduling.problems import ProblemError, problem

P = ParamSpec("P")
JSON_CONTENT_TYPES = ("application/json",)
log = logging.getLogger(__name__)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )


def problem_response(error: ProblemError) -> func.HttpResponse:
    return func.HttpResponse(
        error.problem.model_dump_json(),
        status_code=error.problem.status,
        mimetype="application/problem+json",
        headers=error.headers or None,
    )


def problem_responses(
    handler: Callable[P, Awaitable[func.HttpResponse]],
) -> Callable[P, Awaitable[func.HttpResponse]]:
    """Turn a ProblemError, or any unexpected error, into a problem-details response."""

    @functools.wraps(handler)
    async def respond(*args: P.args, **kwargs: P.kwargs) -> func.HttpResponse:
        try:
            return await handler(*args, **kwargs)
        except ProblemError as error:
            return problem_response(error)
        except Exception:
            log.exception("unhandled error in %s", handler.__name__)
            return problem_response(
                problem(500, "internal", "Internal error", "the request failed; see the app's logs")
            )

    return respond


def read_json_body(request: func.HttpRequest, max_bytes: int) -> Any:
    """The request's JSON body, or a 413/415/400 problem saying what is wrong with it."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_CONTENT_TYPES:
        raise problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send the body as application/json (got {content_type or 'no Content-Type'})",
        )
    declared = request.headers.get("content-length", "")
    body = request.get_body()
    if len(body) > max_bytes or (declared.isdigit() and int(declared) > max_bytes):
        raise problem(
            413, "payload-too-large", "Payload too large", f"the body limit is {max_bytes} bytes"
        )
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise problem(
            400, "malformed-json", "Malformed JSON", f"the body is not JSON: {error}"
        ) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def query_int(request: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise problem(
            400,
            "invalid-query",
            "Invalid query parameter",
            f"{name} must be a whole number from {low} to {high}",
        )
    return int(raw)


def query_flag(request: func.HttpRequest, name: str) -> bool:
    raw = (request.params.get(name) or "").lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise problem(400, "invalid-query", "Invalid query parameter", f"{name} must be true or false")


def origin_of(request: func.HttpRequest) -> str:
    """scheme://host[:port] of the URL the caller used, for links back to our own routes."""
    parts = urlsplit(request.url)
    return f"{parts.scheme}://{parts.netloc}"
