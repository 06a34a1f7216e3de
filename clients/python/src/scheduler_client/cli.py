"""The `scheduler` command: the Durable Scheduler's API from a shell.

Whole at ~975 lines: the click group, one command after another with its options and help;
what the user typed becomes a request in `arguments`, answers are drawn by `render`.
"""

import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from pydantic import BaseModel, ValidationError

from scheduler_client import arguments, render
from scheduler_client.client import SchedulerClient, parse_answer
from scheduler_client.config import (
    DEFAULT_URL,
    KEY_ENV,
    URL_ENV,
    WEBHOOK_SECRET_ENV,
    ConfigError,
    connection,
    webhook_secrets,
)
from scheduler_client.errors import ApiError, ExitCode, NotFound, SchedulerError, api_error
from scheduler_client.models import (
    ENDED_STATES,
    TRANSACTION_ID_PATTERN,
    AcceptedJob,
    BatchOutcome,
    BatchRequest,
    Callbacks,
    CancelOutcome,
    CancelQuery,
    DeletedJob,
    FailedListQuery,
    FailedPage,
    FireTimes,
    FlowControlRequest,
    HttpCallPayload,
    JobListQuery,
    JobLogEntry,
    JobLogPage,
    JobLogQuery,
    JobPage,
    JobStatus,
    JobStatusAnswer,
    JobStatusQuery,
    LogAppendPayload,
    PreviewQuery,
    RetryPolicy,
    ScheduleRequest,
)
from scheduler_client.receiver import Delivery, Receiver, SecretError, verifiers_of

P = ParamSpec("P")
R = TypeVar("R")
# The API's largest page of jobs and of log entries.
MAX_JOB_PAGE = 500
MAX_LOG_PAGE = 1000
FOLLOW_INTERVAL_SECONDS = 2.0

HELP = f"""The Durable Scheduler from a shell: schedule jobs, watch them, receive them.

\b
Configuration (a flag wins over the environment):
  --url / {URL_ENV}   the app's URL (default {DEFAULT_URL}, where scripts/run-local.sh
                       serves it; in Azure https://<app>.azurewebsites.net)
  --key / {KEY_ENV}   a function key of the app, sent as x-functions-key
When the URL is on this machine (127.0.0.1, ::1, localhost) and no key is given, the
function key the local host made for this machine is read from the nearest
local.settings.json in this directory or one above it (scripts/run-local.sh writes it).
The key is printed only by `scheduler key`.

\b
Exit codes:
  0  done
  1  any other failure (the receiver could not listen, interrupted)
  2  usage error: a wrong option or argument; nothing was sent
  3  not found: no job with that id (404)
  4  refused by the API: invalid request, wrong state, bad key (any other 4xx)
  5  the API is unavailable: 5xx, no answer, or an answer that is not the API's

Output is for people unless --json is given: then the API's answer, as JSON, on standard
output (for `schedule`, whose own --json is the request body, put --json before it:
`scheduler --json schedule ...`). Errors go to standard error; with --json the API's
problem document also goes to standard output. Progress is shown only on a terminal.
"""


@dataclass
class Options:
    url: str | None
    key: str | None
    timeout: float
    json_output: bool

    def client(self) -> SchedulerClient:
        try:
            found = connection(self.url, self.key)
        except ConfigError as error:
            raise click.UsageError(str(error)) from None
        if found.key_source and sys.stderr.isatty():
            click.echo(f"(using the function key from {found.key_source})", err=True)
        return SchedulerClient(found.base_url, found.key, timeout=self.timeout)


def options() -> Options:
    return click.get_current_context().find_object(Options) or Options(None, None, 30.0, False)


def _set_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Options).json_output = True


json_flag = click.option(
    "--json",
    "json_output",
    is_flag=True,
    expose_value=False,
    callback=_set_json,
    help="Print the API's answer as JSON.",
)


def _transaction_id(_: click.Context, __: click.Parameter, value: str) -> str:
    lowered = value.strip().lower()
    if not re.fullmatch(TRANSACTION_ID_PATTERN, lowered):
        raise click.BadParameter("a job's id is the transaction id schedule printed (a UUID)")
    return lowered


job_id = click.argument("transaction_id", metavar="ID", callback=_transaction_id)


def api_command(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the client's errors into a message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ApiError as error:
            _report_api_error(error)
        except SchedulerError as error:
            click.echo(f"error: {error}", err=True)
            _exit(error.exit_code)
        except ValidationError as error:
            raise click.UsageError(_validation_message(error)) from None
        except KeyboardInterrupt:
            _exit(ExitCode.FAILED, 130)

    return wrapper


def _report_api_error(error: ApiError) -> NoReturn:
    if options().json_output and error.problem is not None:
        click.echo(json.dumps(json.loads(error.body), indent=2))
    click.echo(f"error: {render.safe(error.summary())}", err=True)
    if error.problem is not None:
        for field_error in error.problem.errors:
            where = ".".join(str(part) for part in field_error.loc)
            click.echo(f"  {render.safe(where)}: {render.safe(field_error.msg)}", err=True)
    _exit(error.exit_code)


def _exit(code: ExitCode, value: int | None = None) -> NoReturn:
    raise click.exceptions.Exit(value if value is not None else int(code))


def _validation_message(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        lines.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
    return "; ".join(lines)


def emit(raw: Any, human: Callable[[], None]) -> None:
    """The API's answer as JSON with --json, else the human form."""
    if options().json_output:
        click.echo(json.dumps(raw, indent=2, ensure_ascii=False))
    else:
        human()


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", help=f"The app's URL [env {URL_ENV}; {DEFAULT_URL}].")
@click.option("--key", metavar="KEY", help=f"A function key of the app [env {KEY_ENV}].")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each answer of the API.",
)
@click.option("--json", "json_output", is_flag=True, help="Print the API's answers as JSON.")
@click.version_option(package_name="durable-scheduler-client", prog_name="scheduler")
@click.pass_context
def main(
    ctx: click.Context, url: str | None, key: str | None, timeout: float, json_output: bool
) -> None:
    ctx.obj = Options(url, key, timeout, json_output)


# --- schedule --------------------------------------------------------------------------------


@main.command()
@click.option(
    "--in",
    "after",
    metavar="DURATION",
    help="When: this long from now (10s, 5m, 1h30m, 2d, PT5M), counted by the server.",
)
@click.option("--at", metavar="TIME", help="When: an RFC 3339 instant (or with --tz a local time).")
@click.option("--cron", metavar="EXPR", help="When: a cron schedule (five fields, or @daily…).")
@click.option("--tz", metavar="ZONE", help="The IANA zone of --cron, or of a local --at.")
@click.option("--start-at", metavar="TIME", help="With --cron: no run before this instant.")
@click.option("--end-at", metavar="TIME", help="With --cron: no run after this instant.")
@click.option("--max-runs", type=int, help="With --cron: stop after this many runs.")
@click.option(
    "--dst-gap", type=click.Choice(["shift", "skip"]), help="A wall time that does not exist."
)
@click.option(
    "--dst-fold",
    type=click.Choice(["first", "last", "both"]),
    help="A wall time that happens twice.",
)
@click.option("--post", metavar="URL", help="Call: POST to URL.")
@click.option("--get", metavar="URL", help="Call: GET URL.")
@click.option("--put", metavar="URL", help="Call: PUT to URL.")
@click.option("--patch", metavar="URL", help="Call: PATCH URL.")
@click.option("--delete", metavar="URL", help="Call: DELETE URL.")
@click.option("--request", nargs=2, metavar="METHOD URL", help="Call: any method (HEAD, OPTIONS…).")
@click.option(
    "--log",
    "log_message",
    metavar="MESSAGE",
    help="Instead of a call: append MESSAGE to the job log.",
)
@click.option(
    "--json", "json_body", metavar="JSON", help="The call's JSON body (@file, @- for stdin)."
)
@click.option("--body", metavar="TEXT", help="The call's text body (@file, @- for stdin).")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="A header of the call (repeatable).",
)
@click.option("--call-timeout", type=float, metavar="SECONDS", help="The call's deadline.")
@click.option(
    "--record-response", is_flag=True, help="Keep the start of the target's answer in the outcome."
)
@click.option(
    "--level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"]),
    help="With --log: the entry's level.",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --log: a field of the entry, VALUE as JSON if it parses (repeatable).",
)
@click.option(
    "--retry",
    "max_attempts",
    type=int,
    metavar="N",
    help="Attempts per run, at most (1-10; default 1).",
)
@click.option(
    "--retry-delay", type=float, metavar="SECONDS", help="The first retry's delay (default 30)."
)
@click.option(
    "--retry-max-delay", type=float, metavar="SECONDS", help="The longest delay between attempts."
)
@click.option("--on-success", metavar="URL", help="POST the outcome here when a run succeeds.")
@click.option("--on-failure", metavar="URL", help="POST the outcome here when a run fails.")
@click.option("--flow-key", metavar="KEY", help="Go through this flow key's limits.")
@click.option(
    "--max-parallel", type=int, metavar="N", help="At most N attempts of the flow key at once."
)
@click.option(
    "--rate",
    "rate_per_second",
    type=float,
    metavar="PER_SECOND",
    help="At most this many attempt starts per second.",
)
@click.option("--idempotency-key", metavar="KEY", help="Send again safely: one key, one job.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="A label to find and cancel the job by (repeatable; shown in clear: no secrets).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the job's id.")
@api_command
def schedule(
    after: str | None,
    at: str | None,
    cron: str | None,
    tz: str | None,
    start_at: str | None,
    end_at: str | None,
    max_runs: int | None,
    dst_gap: str | None,
    dst_fold: str | None,
    post: str | None,
    get: str | None,
    put: str | None,
    patch: str | None,
    delete: str | None,
    request: tuple[str, str] | None,
    log_message: str | None,
    json_body: str | None,
    body: str | None,
    headers: tuple[str, ...],
    call_timeout: float | None,
    record_response: bool,
    level: str | None,
    fields: tuple[str, ...],
    max_attempts: int | None,
    retry_delay: float | None,
    retry_max_delay: float | None,
    on_success: str | None,
    on_failure: str | None,
    flow_key: str | None,
    max_parallel: int | None,
    rate_per_second: float | None,
    idempotency_key: str | None,
    labels: tuple[str, ...],
    quiet: bool,
) -> None:
    """Schedule a job: call a URL, or append to the job log, at a time or on a schedule.

    \b
    scheduler schedule --in 5m --post https://example.com/hook --json '{"a": 1}'
    scheduler schedule --at 2026-12-01T09:30:00Z --post https://example.com/hook --json '{"a": 1}'
    scheduler schedule --at 2027-03-28T09:00:00 --tz Europe/Paris --log "good morning"
    scheduler schedule --cron '0 9 * * MON-FRI' --tz Europe/Paris --post https://example.com/standup
    """
    fields_given: dict[str, Any] = {}
    if log_message is not None:
        if any((post, get, put, patch, delete, request)):
            raise click.UsageError("give either a URL to call or --log, not both")
        if json_body is not None or body is not None or headers or call_timeout or record_response:
            raise click.UsageError(
                "--json, --body, --header, --call-timeout and --record-response are for calls, "
                "not --log"
            )
        payload: BaseModel = LogAppendPayload(
            message=log_message,
            **({"level": level} if level else {}),
            fields=arguments.fields(fields),
        )
        prompt_type = "log.append"
    else:
        if level or fields:
            raise click.UsageError("--level and --field are for --log")
        methods = {"POST": post, "GET": get, "PUT": put, "PATCH": patch, "DELETE": delete}
        method, url = arguments.target(methods, request)
        if json_body is not None and body is not None:
            raise click.UsageError("give --json or --body, not both")
        call: dict[str, Any] = {"method": method, "url": url}
        if json_body is not None:
            call["json"] = arguments.json_value(
                arguments.text_or_file(json_body, "--json") or "", "--json"
            )
        if body is not None:
            call["body"] = arguments.text_or_file(body, "--body")
        if headers:
            call["headers"] = arguments.headers(headers)
        if call_timeout is not None:
            call["timeout_seconds"] = call_timeout
        if record_response:
            call["record_response_body"] = True
        payload = HttpCallPayload(**call)
        prompt_type = "http.call"
    fields_given.update(arguments.when(after, at, cron, tz))
    given: dict[str, Any] = {
        "start_at": start_at,
        "end_at": end_at,
        "max_runs": max_runs,
        "dst_gap": dst_gap,
        "dst_fold": dst_fold,
    }
    fields_given.update({name: value for name, value in given.items() if value is not None})
    retry = {
        name: value
        for name, value in (
            ("max_attempts", max_attempts),
            ("initial_delay_seconds", retry_delay),
            ("max_delay_seconds", retry_max_delay),
        )
        if value is not None
    }
    if retry:
        fields_given["retry"] = RetryPolicy(**retry)
    if on_success or on_failure:
        fields_given["callbacks"] = Callbacks(
            **{
                name: url
                for name, url in (("on_success", on_success), ("on_failure", on_failure))
                if url
            }
        )
    flow = {
        name: value
        for name, value in (
            ("key", flow_key),
            ("max_parallel", max_parallel),
            ("rate_per_second", rate_per_second),
        )
        if value is not None
    }
    if flow:
        fields_given["flow_control"] = FlowControlRequest(**flow)
    if labels:
        fields_given["labels"] = arguments.labels(labels)
    job = ScheduleRequest(
        prompt_type=prompt_type,
        payload=payload.model_dump(mode="json", by_alias=True, exclude_unset=True),
        **fields_given,
    )
    with options().client() as client:
        headers_sent = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        _, raw = client.send("create_job", body=job, headers=headers_sent)
    answer = parse_answer(AcceptedJob, raw)
    if quiet and not options().json_output:
        click.echo(answer.transaction_id)
        return
    emit(raw, lambda: click.echo(render.accepted(answer)))


# --- reading ---------------------------------------------------------------------------------


def _pages(
    client: SchedulerClient,
    operation_id: str,
    query: Callable[[int, str | None], BaseModel],
    answer: type[JobPage] | type[FailedPage],
    limit: int | None,
    cursor: str | None,
) -> tuple[list[Any], list[Any], str | None]:
    """Jobs page after page until `limit` (None: all); the raw jobs, the parsed ones, and
    the cursor after the last one read."""
    raw_jobs: list[Any] = []
    jobs: list[Any] = []
    while True:
        size = MAX_JOB_PAGE if limit is None else min(MAX_JOB_PAGE, limit - len(jobs))
        _, raw = client.send(operation_id, query=query(size, cursor))
        page = parse_answer(answer, raw)
        raw_jobs.extend(raw["jobs"])
        jobs.extend(page.jobs)
        cursor = page.next_cursor
        if cursor is None or (limit is not None and len(jobs) >= limit):
            return raw_jobs, jobs, cursor


def _more(cursor: str | None) -> None:
    if cursor is not None and not options().json_output:
        click.echo(f"(more: --cursor {cursor})", err=True)


page_options = [
    click.option("--type", "prompt_type", metavar="TYPE", help="Only jobs of this prompt type."),
    click.option("--from", "due_from", metavar="TIME", help="Only jobs due at or after TIME."),
    click.option("--to", "due_to", metavar="TIME", help="Only jobs due before TIME."),
    click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=50,
        show_default=True,
        help="Show at most this many.",
    ),
    click.option("--all", "every", is_flag=True, help="Show every one (page after page)."),
    click.option("--cursor", metavar="CURSOR", help="Go on from an earlier listing's cursor."),
]


def with_page_options(command: Callable[P, R]) -> Callable[P, R]:
    for option in reversed(page_options):
        command = option(command)
    return command


label_option = click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only jobs with this label (repeatable: with all of them).",
)


@main.command(name="list")
@click.option(
    "--state", type=click.Choice(["pending", "firing", "retrying", "paused"]), help="Only these."
)
@label_option
@with_page_options
@json_flag
@api_command
def list_jobs(
    state: str | None,
    labels: tuple[str, ...],
    prompt_type: str | None,
    due_from: str | None,
    due_to: str | None,
    limit: int,
    every: bool,
    cursor: str | None,
) -> None:
    """List live jobs (pending, firing, retrying, paused), soonest first."""

    def query(size: int, after: str | None) -> BaseModel:
        return JobListQuery.model_validate(
            {"limit": size, "state": state, "prompt_type": prompt_type, "from": due_from,
             "to": due_to, "label": list(labels) or None, "cursor": after}
        )  # fmt: skip

    with options().client() as client:
        raw_jobs, jobs, cursor = _pages(
            client, "list_jobs", query, JobPage, None if every else limit, cursor
        )
    emit(
        {"jobs": raw_jobs, "next_cursor": cursor},
        lambda: (
            render.console().print(render.jobs_table(jobs)) if jobs else click.echo("no live jobs")
        ),
    )
    _more(cursor)


@main.command()
@with_page_options
@json_flag
@api_command
def failed(
    prompt_type: str | None,
    due_from: str | None,
    due_to: str | None,
    limit: int,
    every: bool,
    cursor: str | None,
) -> None:
    """List failed jobs (the dead letters), oldest failure first: `replay` runs one again."""

    def query(size: int, after: str | None) -> BaseModel:
        return FailedListQuery.model_validate(
            {"limit": size, "prompt_type": prompt_type, "from": due_from, "to": due_to,
             "cursor": after}
        )  # fmt: skip

    with options().client() as client:
        raw_jobs, jobs, cursor = _pages(
            client, "list_failed", query, FailedPage, None if every else limit, cursor
        )
    emit(
        {"jobs": raw_jobs, "next_cursor": cursor},
        lambda: (
            render.console().print(render.failed_table(jobs))
            if jobs
            else click.echo("no failed jobs")
        ),
    )
    _more(cursor)


@main.command()
@job_id
@click.option("--history", is_flag=True, help="Add the job's orchestration (its durable status).")
@json_flag
@api_command
def status(transaction_id: str, history: bool) -> None:
    """Show a job: its state, times, attempts and last outcome."""
    with options().client() as client:
        _, raw = client.send(
            "job_status", transaction_id=transaction_id, query=JobStatusQuery(history=history)
        )
    job = parse_answer(JobStatusAnswer, raw).root
    emit(raw, lambda: click.echo("\n".join(render.status_lines(job))))


@main.command()
@job_id
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries until the job ends.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=FOLLOW_INTERVAL_SECONDS,
    show_default=True,
    help="With --follow: seconds between reads.",
)
@json_flag
@api_command
def logs(transaction_id: str, follow: bool, interval: float) -> None:
    """Print a job's log. With --follow, new entries as they come (with --json one JSON line
    each), until the job has ended (succeeded, failed, cancelled) or Ctrl-C."""
    with options().client() as client:
        if follow:
            _follow(client, transaction_id, interval)
            return
        raw_entries: list[Any] = []
        entries: list[JobLogEntry] = []
        cursor = None
        while True:
            _, raw = client.send(
                "job_log",
                transaction_id=transaction_id,
                query=JobLogQuery(limit=MAX_LOG_PAGE, cursor=cursor),
            )
            page = parse_answer(JobLogPage, raw)
            raw_entries.extend(raw["entries"])
            entries.extend(page.entries)
            cursor = page.next_cursor
            if cursor is None:
                break
    emit(
        {"entries": raw_entries, "next_cursor": None},
        lambda: click.echo("\n".join(render.log_line(entry) for entry in entries)),
    )


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    """A spinner on standard error while waiting, only when that is a terminal."""
    console = render.console(stderr=True)
    with console.status(text) if console.is_terminal else nullcontext():
        yield


def _follow(client: SchedulerClient, transaction_id: str, interval: float) -> None:
    """Print entries as they come; stop once the job has ended and a read after that found
    nothing new. The log has no cursor past its end, so the last page is read again (its
    cursor kept) and entries already printed are skipped."""
    printed: set[str] = set()
    page_cursor: str | None = None
    ended = False
    json_lines = options().json_output
    with _spinner(f"following {transaction_id} (Ctrl-C to stop)"):
        while True:
            _, raw = client.send(
                "job_log",
                transaction_id=transaction_id,
                query=JobLogQuery(limit=MAX_LOG_PAGE, cursor=page_cursor),
            )
            page = parse_answer(JobLogPage, raw)
            fresh = 0
            for raw_entry, entry in zip(raw["entries"], page.entries, strict=True):
                if entry.entry_id in printed:
                    continue
                printed.add(entry.entry_id)
                fresh += 1
                if json_lines:
                    click.echo(json.dumps(raw_entry, ensure_ascii=False))
                else:
                    click.echo(render.log_line(entry))
            if page.next_cursor is not None:
                page_cursor = page.next_cursor
                continue
            if ended and not fresh:
                return
            try:
                _, raw_status = client.send("job_status", transaction_id=transaction_id)
                state = raw_status.get("state") if isinstance(raw_status, dict) else None
                ended = state in ENDED_STATES
            except NotFound:
                ended = True  # deleted: its log stays, nothing more comes
            if not ended:
                time.sleep(interval)


@main.command()
@click.option("--cron", required=True, metavar="EXPR", help="The cron schedule.")
@click.option("--tz", default="UTC", show_default=True, metavar="ZONE", help="Its IANA zone.")
@click.option("--count", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--dst-gap", type=click.Choice(["shift", "skip"]))
@click.option("--dst-fold", type=click.Choice(["first", "last", "both"]))
@click.option("--start-at", metavar="TIME", help="No run before this instant.")
@click.option("--end-at", metavar="TIME", help="No run after this instant.")
@json_flag
@api_command
def preview(
    cron: str,
    tz: str,
    count: int,
    dst_gap: str | None,
    dst_fold: str | None,
    start_at: str | None,
    end_at: str | None,
) -> None:
    """Show a cron schedule's next fire times (in UTC), creating nothing."""
    given = {"dst_gap": dst_gap, "dst_fold": dst_fold, "start_at": start_at, "end_at": end_at}
    query = PreviewQuery.model_validate(
        {"cron": cron, "timezone": tz, "count": count}
        | {name: value for name, value in given.items() if value is not None}
    )
    with options().client() as client:
        _, raw = client.send("preview_schedule", query=query)
    times = parse_answer(FireTimes, raw).fire_times
    emit(raw, lambda: click.echo("\n".join(render.instant(moment) for moment in times)))


# --- changing --------------------------------------------------------------------------------


@main.command()
@job_id
@json_flag
@api_command
def cancel(transaction_id: str) -> None:
    """Cancel a pending, retrying or paused job (or delete an ended job's record)."""
    with options().client() as client:
        _, raw = client.send("delete_job", transaction_id=transaction_id)
    answer = parse_answer(DeletedJob, raw)
    emit(raw, lambda: click.echo(render.deleted(answer)))


@main.command(name="cancel-many")
@label_option
@click.option("--type", "prompt_type", metavar="TYPE", help="Only jobs of this prompt type.")
@click.option("--from", "due_from", metavar="TIME", help="Only jobs due at or after TIME.")
@click.option("--to", "due_to", metavar="TIME", help="Only jobs due at or before TIME.")
@json_flag
@api_command
def cancel_many(
    labels: tuple[str, ...], prompt_type: str | None, due_from: str | None, due_to: str | None
) -> None:
    """Cancel every live job a filter names (at least one filter), call after call until the
    API says it has looked at them all; a job whose attempt is running is listed, not
    cancelled.

    \b
    scheduler cancel-many --label tenant=acme
    """
    if not (labels or prompt_type or due_from or due_to):
        raise click.UsageError(
            "give --label, --type, --from or --to (every job at once is the admin's wipe)"
        )
    cancelled, firing, unreadable, cursor = 0, [], 0, None
    with options().client() as client:
        while True:
            query = CancelQuery.model_validate(
                {"label": list(labels) or None, "prompt_type": prompt_type, "from": due_from,
                 "to": due_to, "cursor": cursor}
            )  # fmt: skip
            _, raw = client.send("cancel_jobs", query=query)
            answer = parse_answer(CancelOutcome, raw)
            cancelled += answer.cancelled
            firing += answer.firing
            unreadable += answer.unreadable
            cursor = answer.next_cursor
            if answer.complete or cursor is None:
                break
    total = {"cancelled": cancelled, "firing": firing, "unreadable": unreadable}
    emit(
        total,
        lambda: click.echo(
            f"cancelled {cancelled}"
            + (f"; firing, left alone: {' '.join(firing)}" if firing else "")
            + (f"; unreadable, left alone: {unreadable}" if unreadable else "")
        ),
    )


@main.command()
@click.argument("source", metavar="FILE")
@json_flag
@api_command
def batch(source: str) -> None:
    """Schedule up to 1,000 jobs from FILE (- for standard input): {"jobs": [...]} or a list,
    each job a create body with, optionally, its own idempotency_key. One line per job, in
    order: its id, or why it failed.

    \b
    scheduler batch jobs.json
    """
    text = arguments.text_or_file(f"@{source}", "FILE") or ""
    document = arguments.json_value(text, "FILE")
    jobs = document.get("jobs") if isinstance(document, dict) else document
    try:
        request = BatchRequest.model_validate({"jobs": jobs})
    except ValidationError as error:
        raise click.BadParameter(_validation_message(error), param_hint="FILE") from None
    with options().client() as client:
        _, raw = client.send("create_batch", body=request)
    answer = parse_answer(BatchOutcome, raw)

    def human() -> None:
        for result in answer.results:
            if result.job is not None:
                click.echo(f"{result.index}: {result.result} {result.job.transaction_id}")
            elif result.problem is not None:
                click.echo(f"{result.index}: failed: {result.problem.detail}")
        click.echo(
            f"created {answer.created}, existed {answer.existed}, failed {answer.failed}",
            err=True,
        )

    emit(raw, human)
    # A job not scheduled is a failure a script must see: the code of the worst problem.
    statuses = [r.problem.status for r in answer.results if r.problem is not None]
    if statuses:
        _exit(api_error(max(statuses), None, b"").exit_code)


def _state_change(name: str, operation_id: str, done: str, summary: str) -> None:
    """Register `scheduler NAME ID`: one POST that changes the job's state."""

    @json_flag
    @api_command
    def change(transaction_id: str) -> None:
        with options().client() as client:
            _, raw = client.send(operation_id, transaction_id=transaction_id)
        job = parse_answer(JobStatus, raw)
        emit(raw, lambda: click.echo(render.changed(done, job)))

    main.command(name=name, help=summary)(job_id(change))


_state_change("pause", "pause_job", "paused", "Pause a recurring job: no run until it is resumed.")
_state_change(
    "resume",
    "resume_job",
    "resumed",
    "Resume a paused recurring job at its first fire time at least the minimum lead from now.",
)
_state_change("replay", "replay_job", "replayed", "Run a failed job again, now, as a new run.")


@main.command()
def key() -> None:
    """Print the function key the other commands send, for a curl of your own:

    \b
    export SCHEDULER_KEY=$(scheduler key)
    curl -H "x-functions-key: $SCHEDULER_KEY" ...

    It is --key, else SCHEDULER_KEY, else (for an app on this machine) the local host's key
    in the nearest local.settings.json. Exit code 1 when there is none.
    """
    try:
        found = connection(options().url, options().key)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    if not found.key:
        click.echo(
            f"error: no key: give --key, set {KEY_ENV}, or run where scripts/run-local.sh "
            "wrote local.settings.json",
            err=True,
        )
        _exit(ExitCode.FAILED)
    click.echo(found.key)


# --- receiving -------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="0: any free port.",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="WHSEC",
    help=f"A signing secret, whsec_… (repeatable) [env {WEBHOOK_SECRET_ENV}; else "
    "WEBHOOK_SIGNING_SECRETS of the nearest local.settings.json].",
)
@click.option("--no-verify", is_flag=True, help="Accept and print deliveries without checking.")
@click.option(
    "--count", type=click.IntRange(min=1), help="Stop after this many accepted deliveries."
)
@json_flag
def receive(
    host: str, port: int, secrets: tuple[str, ...], no_verify: bool, count: int | None
) -> None:
    """Receive the scheduler's calls here: print each one and check its Standard Webhooks
    signature (answered 204 when it verifies, else 401). JSON, text and empty bodies.

    \b
    Jobs reach it at http://127.0.0.1:8080/<any path> (locally the app must allow loopback
    targets: HTTP_CALL_ALLOWED_NETWORKS=127.0.0.0/8, as scripts/run-local.sh sets it).
    With --json each delivery is one JSON line. Ctrl-C stops it.
    """
    webhooks = None
    if not no_verify:
        found, source = webhook_secrets(secrets)
        if not found:
            raise click.UsageError(
                f"no signing secret: pass --secret whsec_…, set {WEBHOOK_SECRET_ENV}, run where "
                "a local.settings.json has WEBHOOK_SIGNING_SECRETS, or --no-verify"
            )
        try:
            webhooks = verifiers_of(found)
        except SecretError as error:
            raise click.BadParameter(str(error), param_hint="--secret") from None
        where = f" from {source}" if source else ""
        described = f"{len(found)} secret{'s' if len(found) > 1 else ''}{where}"
    json_lines = options().json_output

    def show(delivery: Delivery) -> None:
        if json_lines:
            click.echo(json.dumps(_delivery_json(delivery), ensure_ascii=False))
        else:
            click.echo("\n".join(render.delivery_lines(delivery)))

    try:
        receiver = Receiver(host, port, webhooks, show, count)
    except OSError as error:
        click.echo(f"error: cannot listen on {host}:{port}: {error.strerror}", err=True)
        _exit(ExitCode.FAILED)
    checking = f"verifying with {described}" if webhooks is not None else "NOT verifying"
    click.echo(f"listening on {receiver.url} ({checking}); Ctrl-C to stop", err=True)
    try:
        receiver.serve()
    except KeyboardInterrupt:
        _exit(ExitCode.FAILED, 130)


# Headers whose values `receive --json` shows; any other is named with its value hidden,
# since a job may send a credential to its target (Authorization, an API key header).
SHOWN_HEADERS = frozenset(
    {
        "accept",
        "content-length",
        "content-type",
        "host",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
    }
)
HIDDEN = "(hidden)"


def _shown_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: value if name in SHOWN_HEADERS or name.startswith("x-scheduler-") else HIDDEN
        for name, value in headers.items()
    }


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "received_at": delivery.received_at.isoformat().replace("+00:00", "Z"),
        "method": delivery.method,
        "path": delivery.path,
        "verified": delivery.verified,
        "refusal": delivery.refusal,
        "webhook_id": delivery.webhook_id,
        "transaction_id": delivery.transaction_id,
        "headers": _shown_headers(delivery.headers),
        "body_kind": delivery.body_kind(),
        "body": delivery.body_value(),
    }
