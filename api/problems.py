"""RFC 9457 problem details: the one shape every error response takes."""

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

# A URN, not a URL: no page is served for these types, and a dead link helps nobody.
PROBLEM_TYPE_BASE = "urn:durable-scheduler:problem:"


class FieldError(BaseModel):
    """One invalid field: where it is (`loc`, a JSON path as a list) and what is wrong."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class ProblemError(Exception):
    """Raised anywhere while handling a request; becomes the response."""

    def __init__(self, problem: Problem, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = headers or {}


def problem(
    status: int, slug: str, title: str, detail: str, errors: Sequence[FieldError] = ()
) -> ProblemError:
    return ProblemError(
        Problem(
            type=PROBLEM_TYPE_BASE + slug,
            title=title,
            status=status,
            detail=detail,
            errors=list(errors),
        )
    )


def field_errors(error: ValidationError, prefix: Sequence[str | int] = ()) -> list[FieldError]:
    """Pydantic's errors as field errors, their location under `prefix`."""
    return [
        FieldError(loc=[*prefix, *item["loc"]], msg=_message(item), type=item["type"])
        for item in error.errors(include_url=False, include_input=False)
    ]


def _message(item: Any) -> str:
    message = str(item["msg"])
    # A ValueError raised in our own validators reads better without pydantic's prefix.
    return message.removeprefix("Value error, ")


def validation_problem(detail: str, errors: Sequence[FieldError]) -> ProblemError:
    return problem(422, "validation", "The request is not valid", detail, errors)


def not_found(what: str) -> ProblemError:
    return problem(404, "not-found", "Not found", what)
