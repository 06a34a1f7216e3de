"""Reading requests and writing responses, with every error as problem details."""

import functools
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec
from urllib.parse import urlsplit

import azure.functions as func

if TYPE_CHECKING:
    from api.problems import ProblemError

# api.problems (pydantic models) is imported where an error is answered, not here:
# every route module imports this one, and import time is cold-start time.

P = ParamSpec("P")
JSON_CONTENT_TYPES = ("application/json",)
# Deeper JSON is refused: past about 250 levels pydantic cannot serialise a payload, and past
# about 1000 `json.loads` itself raises RecursionError; neither may become a 500.
MAX_JSON_DEPTH = 100
# ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and other scripts'
# digits (which int() reads).
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 9
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


def problem_response(error: "ProblemError") -> func.HttpResponse:
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
        from api.problems import ProblemError, problem
        from blueprints.telemetry import configure_once

        configure_once()

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
        raise _problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send the body as application/json (got {content_type or 'no Content-Type'})",
        )
    body = request.get_body()
    if len(body) > max_bytes or _declares_more_than(request, max_bytes):
        raise _problem(
            413, "payload-too-large", "Payload too large", f"the body limit is {max_bytes} bytes"
        )
    try:
        document = json.loads(
            body.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_object_with_unique_keys,
        )
    except _NotStrictJson as error:
        from api.problems import FieldError, validation_problem

        raise validation_problem(
            f"the body is JSON, but {error.detail}",
            [FieldError(loc=[], msg=error.detail, type=error.kind)],
        ) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise _malformed(f"the body is not JSON: {error}") from None
    except RecursionError:
        raise _malformed(_too_deep()) from None
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        raise _malformed(_too_deep())
    return document


def _declares_more_than(request: func.HttpRequest, max_bytes: int) -> bool:
    """Whether Content-Length announces a body over the limit (a malformed one is ignored)."""
    declared = request.headers.get("content-length", "").strip()
    if not _DIGITS.fullmatch(declared):
        return False
    significant = declared.lstrip("0")
    return len(significant) > _MAX_DIGITS or int(significant or "0") > max_bytes


def _problem(status: int, slug: str, title: str, detail: str) -> "ProblemError":
    from api.problems import problem

    return problem(status, slug, title, detail)


def _malformed(detail: str) -> "ProblemError":
    return _problem(400, "malformed-json", "Malformed JSON", detail)


def _too_deep() -> str:
    return f"the body is not acceptable JSON: it nests more than {MAX_JSON_DEPTH} levels deep"


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether arrays and objects in `document` nest deeper than `limit` (no recursion)."""
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _NotStrictJson(Exception):
    """Valid JSON syntax that would not mean what it says once parsed: a 422, not a 400.

    Not a ValueError, so that it is never reported as malformed JSON.
    """

    def __init__(self, detail: str, kind: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind


def _shown(text: str, limit: int = 64) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _object_with_unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; another parser (or a reviewer) reads the
    # first. Which one the job runs with must not depend on that.
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _NotStrictJson(
                    f"an object has the key {_shown(key)} more than once", "duplicate_key"
                )
            seen.add(key)
    return document


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e400 would become infinity, then null or an error when the job is stored or sent.
        raise _NotStrictJson(
            f"the number {_shown(text)} is too large to be represented", "number_too_large"
        )
    return value


def _whole_number(raw: str) -> int | None:
    """`raw` as an int when it is 1 to 9 ASCII digits, else None."""
    if len(raw) > _MAX_DIGITS or not _DIGITS.fullmatch(raw):
        return None
    return int(raw)


def query_int(request: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.params.get(name)
    if raw is None or raw == "":
        return default
    value = _whole_number(raw)
    if value is None or not low <= value <= high:
        raise _problem(
            400,
            "invalid-query",
            "Invalid query parameter",
            f"{name} must be a whole number from {low} to {high}",
        )
    return value


def query_flag(request: func.HttpRequest, name: str) -> bool:
    raw = (request.params.get(name) or "").lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise _problem(400, "invalid-query", "Invalid query parameter", f"{name} must be true or false")


def origin_of(request: func.HttpRequest) -> str:
    """scheme://host[:port] of the URL the caller used, for links back to our own routes."""
    parts = urlsplit(request.url)
    return f"{parts.scheme}://{parts.netloc}"
