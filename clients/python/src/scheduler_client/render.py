"""Human output: the API's answers as lines and tables for a person at a terminal.

Everything shown here came from the API or from a delivery, so it may hold any text (a job's
log message, a target's error, a request body): control characters are escaped before they
reach a terminal, and rich is told to read no markup in it.
"""

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from scheduler_client.models import (
    AcceptedJob,
    DeletedJob,
    JobLogEntry,
    JobStatus,
    ListedJob,
    UnreadableJob,
)
from scheduler_client.receiver import Delivery

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A body or a field is shown up to this many characters; the rest is counted.
MAX_SHOWN = 2000


def console(stderr: bool = False) -> Console:
    """A console that reads no markup and, off a terminal, wraps nothing (for pipes)."""
    plain = Console(stderr=stderr, markup=False, highlight=False, emoji=False)
    if plain.is_terminal:
        return plain
    return Console(
        stderr=stderr, markup=False, highlight=False, emoji=False, width=10_000, soft_wrap=True
    )


def safe(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` on one line, control characters escaped, cut at `limit` characters."""
    shown = _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)
    if len(shown) > limit:
        return f"{shown[:limit]}… ({len(shown) - limit} more characters)"
    return shown


def instant(moment: datetime | None, now: datetime | None = None) -> str:
    """`2026-12-01 08:30:00Z (in 4m 59s)`; `-` for none."""
    if moment is None:
        return "-"
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S") + "Z"
    now = now or datetime.now(UTC)
    seconds = (utc - now).total_seconds()
    if abs(seconds) < 1:
        return f"{text} (now)"
    span = duration(abs(seconds))
    return f"{text} (in {span})" if seconds > 0 else f"{text} ({span} ago)"


def duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0s"


def compact(value: Any) -> str:
    return safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def accepted(job: AcceptedJob) -> str:
    return (
        f"scheduled {job.transaction_id} ({job.state}), "
        f"next fire {instant(job.next_fire_at or job.exec_at)}"
    )


def jobs_table(jobs: Iterable[ListedJob | UnreadableJob]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("ID", "STATE", "TYPE", "NEXT FIRE", "ATTEMPTS", "LAST ATTEMPT"):
        table.add_column(column, no_wrap=True)
    for job in jobs:
        if isinstance(job, UnreadableJob):
            table.add_row(
                job.transaction_id, job.state or "?", job.prompt_type or "?", "-", "-",
                Text(f"unreadable: {safe(job.why, 120)}"),
            )  # fmt: skip
            continue
        table.add_row(
            job.transaction_id,
            job.state,
            Text(safe(job.prompt_type, 40)),
            instant(job.next_fire_at),
            str(job.attempts),
            Text(attempt_summary(job.last_attempt)) if job.last_attempt else "-",
        )
    return table


def failed_table(jobs: Iterable[JobStatus | UnreadableJob]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("ID", "TYPE", "FAILED", "ATTEMPTS", "DESTINATION", "LAST ERROR"):
        table.add_column(column, no_wrap=True)
    for job in jobs:
        if isinstance(job, UnreadableJob):
            table.add_row(
                job.transaction_id, job.prompt_type or "?", "-", "-", "-",
                Text(f"unreadable: {safe(job.why, 120)}"),
            )  # fmt: skip
            continue
        table.add_row(
            job.transaction_id,
            Text(safe(job.prompt_type, 40)),
            instant(job.failed_at),
            str(job.attempts),
            Text(safe(job.destination or "-", 80)),
            Text(outcome_summary(job.last_outcome, 120)),
        )
    return table


def attempt_summary(attempt: Any) -> str:
    result = "ok" if attempt.ok else ("failed" if attempt.ok is False else "running")
    status = f" {attempt.status_code}" if attempt.status_code is not None else ""
    error = f": {safe(attempt.error, 120)}" if attempt.error else ""
    return f"#{attempt.attempt} {result}{status}{error}"


def outcome_summary(outcome: dict[str, Any] | None, limit: int = MAX_SHOWN) -> str:
    if not outcome:
        return "-"
    parts = ["ok" if outcome.get("ok") else "failed"]
    if outcome.get("status_code") is not None:
        parts.append(str(outcome["status_code"]))
    if outcome.get("elapsed_ms") is not None:
        parts.append(f"in {outcome['elapsed_ms']} ms")
    text = " ".join(parts)
    if outcome.get("error"):
        text += f": {outcome['error']}"
    return safe(text, limit)


def status_lines(job: JobStatus | UnreadableJob) -> list[str]:
    if isinstance(job, UnreadableJob):
        return [
            f"{job.transaction_id}  unreadable",
            f"  why         {safe(job.why)}",
            f"  state       {job.state or '?'}",
            f"  exec_at     {instant(job.exec_at)}",
            "  (its record cannot be read: `scheduler cancel` removes it)",
        ]
    rows: list[tuple[str, str]] = [
        ("state", job.state),
        ("type", safe(job.prompt_type)),
        ("destination", safe(job.destination or "-")),
        ("next fire", instant(job.next_fire_at)),
        ("due", instant(job.exec_at)),
        ("accepted", instant(job.accepted_at)),
        ("attempts", f"{job.attempts} (at most {job.retry.max_attempts} a run)"),
    ]
    if job.next_attempt_at:
        rows.append(("next attempt", instant(job.next_attempt_at)))
    if job.fired_at:
        rows.append(("fired", instant(job.fired_at)))
    if job.last_outcome:
        rows.append(("last outcome", outcome_summary(job.last_outcome)))
    if job.recurrence:
        recurrence = job.recurrence
        rows.append(("cron", f"{safe(recurrence.cron)} ({safe(recurrence.timezone)})"))
        rows.append(("runs", f"{job.runs}, {job.skipped_runs} skipped"))
    if job.last_run:
        rows.append(("last run", compact(job.last_run)))
    if job.failed_at:
        rows.append(("failed", instant(job.failed_at)))
    if job.replayed_at:
        rows.append(("replayed", instant(job.replayed_at)))
    if job.flow:
        rows.append(
            (
                "flow",
                f"{safe(job.flow.key)} (max {job.flow.max_parallel} at once, "
                f"{job.flow.rate_per_second:g}/s)",
            )
        )
    if job.waiting:
        rows.append(("waiting", f"for a slot of {safe(job.waiting.flow_key)}"))
    if job.callbacks:
        rows.extend((kind, safe(url)) for kind, url in job.callbacks.items())
    for attempt in job.attempt_history:
        rows.append((f"attempt {attempt.attempt}", attempt_summary(attempt)))
    width = max(len(name) for name, _ in rows)
    return [job.transaction_id, *(f"  {name.ljust(width)}  {value}" for name, value in rows)]


def log_line(entry: JobLogEntry) -> str:
    moment = entry.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    text = f"{moment}  {entry.level:<8} {entry.kind:<11} {safe(entry.message)}"
    if entry.fields:
        text += f"  {compact(entry.fields)}"
    return text.rstrip()


def deleted(answer: DeletedJob) -> str:
    before = answer.state_before or "unreadable"
    if before in ("pending", "retrying", "paused"):
        return f"cancelled {answer.transaction_id} (was {before})"
    return f"deleted {answer.transaction_id} (was {before})"


def changed(done: str, job: JobStatus) -> str:
    return f"{done} {job.transaction_id}: {job.state}, next fire {instant(job.next_fire_at)}"


def delivery_lines(delivery: Delivery) -> list[str]:
    moment = delivery.received_at.strftime("%H:%M:%S")
    if delivery.verified:
        verdict = "verified"
    elif delivery.refusal is None:
        verdict = "not verified (--no-verify)"
    else:
        verdict = f"REFUSED: {safe(delivery.refusal, 200)} (answered 401)"
    head = f"{moment}  {delivery.method} {safe(delivery.path, 200)}  {verdict}"
    details = [
        f"job {safe(delivery.transaction_id, 64)}" if delivery.transaction_id else None,
        safe(delivery.webhook_id, 64) if delivery.webhook_id else None,
    ]
    head += "".join(f"  {detail}" for detail in details if detail)
    kind = delivery.body_kind()
    content_type = delivery.headers.get("content-type")
    if kind == "empty":
        body = "(no body)"
    elif kind == "binary":
        body = f"({len(delivery.body)} bytes, not UTF-8 text)"
    elif kind == "json":
        body = compact(delivery.body_value())
    else:
        body = safe(delivery.body.decode("utf-8"))
    label = f"  {safe(content_type, 100)}: " if content_type else "  "
    return [head, label + body]
