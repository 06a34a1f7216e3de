"""A batch of jobs in one request: its bounds, and how its body splits into items.

Each item is a job's create body with, optionally, its own `idempotency_key` (what the
`Idempotency-Key` header is to a single create). Items are checked and accepted one by one;
only a body that is not a list of 1 to MAX_BATCH_JOBS objects is refused as a whole.
"""

import json
from dataclasses import dataclass
from typing import Any

from api.problems import FieldError, ProblemError, problem, validation_problem

MAX_BATCH_JOBS = 1000
MAX_BATCH_BYTES = 1024 * 1024
ITEM_KEY = "idempotency_key"


@dataclass(frozen=True)
class BatchItem:
    """One item: its create body (without the key), its key, or why it cannot be taken."""

    body: Any
    idempotency_key: str | None = None
    refused: ProblemError | None = None


def batch_items(document: Any, max_item_bytes: int) -> list[BatchItem]:
    """The items of a batch body `{"jobs": [...]}` in request order; a 422 for the whole
    batch when it is not one. An item larger than `max_item_bytes` (the single create's
    body limit), with a key that is not a string, or with a key an earlier item has, is
    refused on its own."""
    if not isinstance(document, dict) or set(document) != {"jobs"}:
        raise validation_problem(
            "the batch must be an object with one field, jobs",
            [FieldError(loc=["jobs"], msg="give jobs: a list of job requests", type="missing")],
        )
    jobs = document["jobs"]
    if not isinstance(jobs, list) or not 1 <= len(jobs) <= MAX_BATCH_JOBS:
        raise validation_problem(
            f"jobs must be a list of 1 to {MAX_BATCH_JOBS} job requests",
            [
                FieldError(
                    loc=["jobs"],
                    msg=f"a list of 1 to {MAX_BATCH_JOBS} items",
                    type="batch_size",
                )
            ],
        )
    if not_objects := [index for index, job in enumerate(jobs) if not isinstance(job, dict)]:
        raise validation_problem(
            "every job of a batch is an object (a job request)",
            [
                FieldError(loc=["jobs", index], msg="a job request is an object", type="dict_type")
                for index in not_objects[:10]
            ],
        )
    seen: dict[str, int] = {}
    items = []
    for index, job in enumerate(jobs):
        items.append(_item(job, index, seen, max_item_bytes))
    return items


def _item(job: dict[str, Any], index: int, seen: dict[str, int], max_item_bytes: int) -> BatchItem:
    body = {name: value for name, value in job.items() if name != ITEM_KEY}
    # The job as its single create's body, sent compact in UTF-8 (as httpx and our client
    # send it): escaped to ASCII, text in other scripts would count up to six times, and
    # the key is a header there. (A lone surrogate, which JSON can escape, counts 3 bytes.)
    compact = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if len(compact.encode("utf-8", "surrogatepass")) > max_item_bytes:
        return BatchItem(
            body,
            refused=problem(
                413,
                "payload-too-large",
                "Payload too large",
                f"a job of a batch is limited to {max_item_bytes} bytes, as a single create",
            ),
        )
    key = job.get(ITEM_KEY)
    if key is None:
        return BatchItem(body)
    if not isinstance(key, str):
        return BatchItem(body, refused=_invalid([ITEM_KEY], "must be a string", "string_type"))
    if key in seen:
        return BatchItem(
            body,
            refused=_invalid(
                [ITEM_KEY], f"the same key as job {seen[key]} of this batch", "duplicate_key"
            ),
        )
    seen[key] = index
    return BatchItem(body, key)


def _invalid(loc: list[str | int], msg: str, kind: str) -> ProblemError:
    return validation_problem(
        f"this job of the batch is not valid: {msg}", [FieldError(loc=loc, msg=msg, type=kind)]
    )
