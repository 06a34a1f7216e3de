"""The query strings the API reads, as models: their bounds are the handlers' bounds.

The handlers read each parameter with http_io's capped readers, using the constants here; the
OpenAPI document describes the parameters from these models, so both say the same.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduling.labels import LABEL_FILTER_PATTERN, MAX_LABELS
from scheduling.models import UtcDatetime, fields_of
from scheduling.recurrence import Recurrence
from storage.job_log.entries import MAX_READ_LIMIT
from storage.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

DEFAULT_LOG_PAGE = 100
MAX_LOG_PAGE = MAX_READ_LIMIT
DEFAULT_PREVIEW = 10
MAX_PREVIEW = 100


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JobListQuery(_Query):
    """GET /api/schedule: live jobs in exec_at order."""

    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    state: Literal["pending", "firing", "retrying", "paused"] | None = None
    due_from: UtcDatetime | None = Field(
        default=None, alias="from", description="only jobs due at or after this time"
    )
    due_to: UtcDatetime | None = Field(
        default=None, alias="to", description="only jobs due at or before this time"
    )
    prompt_type: str | None = None
    label: list[Annotated[str, Field(pattern=LABEL_FILTER_PATTERN)]] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="`key=value`: only jobs with this label; repeated, only jobs with all of "
        "them. With labels the jobs come in transaction id order (the label index's), not "
        "exec_at order",
    )
    cursor: str | None = Field(
        default=None, description="the `next_cursor` of the previous page of this listing"
    )


class CancelQuery(_Query):
    """DELETE /api/schedule: the live jobs a filter names; at least one filter is required."""

    label: list[Annotated[str, Field(pattern=LABEL_FILTER_PATTERN)]] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="`key=value`: only jobs with this label; repeated, only jobs with all of them",
    )
    prompt_type: str | None = None
    due_from: UtcDatetime | None = Field(
        default=None, alias="from", description="only jobs due at or after this time"
    )
    due_to: UtcDatetime | None = Field(
        default=None, alias="to", description="only jobs due at or before this time"
    )
    cursor: str | None = Field(
        default=None, description="the `next_cursor` of the previous call with this filter"
    )


class FailedListQuery(_Query):
    """GET /api/failed: failed jobs in failure-time order."""

    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    due_from: UtcDatetime | None = Field(
        default=None, alias="from", description="only jobs that failed at or after this time"
    )
    due_to: UtcDatetime | None = Field(
        default=None, alias="to", description="only jobs that failed at or before this time"
    )
    prompt_type: str | None = None
    cursor: str | None = Field(
        default=None, description="the `next_cursor` of the previous page of this list"
    )


class JobStatusQuery(_Query):
    history: bool = Field(
        default=False, description="add the orchestration's durable status and history"
    )


class JobLogQuery(_Query):
    limit: int = Field(default=DEFAULT_LOG_PAGE, ge=1, le=MAX_LOG_PAGE)
    cursor: str | None = Field(
        default=None, description="the `next_cursor` of the previous page of this log"
    )


_PREVIEWED = ("cron", "timezone", "dst_gap", "dst_fold", "start_at", "end_at")


class PreviewQuery(fields_of("PreviewFields", Recurrence, _PREVIEWED)):  # type: ignore[misc]
    """GET /api/schedule/preview: a cron schedule's next fire times, creating nothing."""

    count: int = Field(default=DEFAULT_PREVIEW, ge=1, le=MAX_PREVIEW)


# The dashboard's pages (blueprints/dashboard*.py): the API's filters, and its forms.


class DashboardNotice(_Query):
    done: str | None = Field(
        default=None,
        description="the action just done, for the page's notice (the dashboard's own "
        "redirects set it); a value it does not know shows none",
    )


class DashboardJobsQuery(JobListQuery, DashboardNotice):
    """The pending page: the listing's filters."""


class DashboardFailedQuery(FailedListQuery, DashboardNotice):
    """The failed page: the failed list's filters."""


class DashboardRecurringQuery(DashboardNotice):
    cursor: str | None = Field(default=None, description="the page's own `Next` link carries it")


class DashboardForm(BaseModel):
    """Every dashboard form's body: the session's CSRF token (forms come from its pages)."""

    csrf: str
