"""Reading one job's log, page by page."""

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from blueprints import dependencies
from blueprints.durable_state import backend_unavailable, checked_id, status_or_none
from blueprints.http_io import json_response, query_int
from scheduling.paging import InvalidCursor
from scheduling.problems import not_found, problem

DEFAULT_LOG_PAGE = 100
log = logging.getLogger(__name__)
MAX_LOG_PAGE = 1000


async def read_job_log(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    """Entries in time order; a deleted job keeps its log, an id never issued is a 404."""
    checked_id(transaction_id)
    deps = dependencies.current()
    limit = query_int(request, "limit", DEFAULT_LOG_PAGE, 1, MAX_LOG_PAGE)
    cursor = request.params.get("cursor") or None
    try:
        store = deps.job_log(deps.settings())
        page = await asyncio.to_thread(store.read, transaction_id, limit, cursor)
    except InvalidCursor as error:
        raise problem(400, "invalid-cursor", "Invalid cursor", str(error)) from None
    except Exception:
        log.exception("reading the log of %s failed", transaction_id)
        raise backend_unavailable("answer the job log read") from None
    if not page.entries and cursor is None and await status_or_none(client, transaction_id) is None:
        raise not_found(f"no job with transaction id {transaction_id}")
    return json_response(page.model_dump(mode="json"))
