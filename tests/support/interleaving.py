"""Drive one interleaving of two requests: a step of the test runs inside a store call.

The job store stays the real one (on Azurite); `interleaved` wraps it so that the first call
of one method runs a step of the test just before or just after it, in the worker thread the
route called the store from. A step that sends another request to the app hands it to the
test's event loop (`on_loop`), which is free while the first request waits for its thread.
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, cast

from storage.job_store import TableJobStore

T = TypeVar("T")
# Long enough for a request on a loaded machine; a hung step fails the test, not the suite.
STEP_SECONDS = 60.0


class _Interleaved:
    def __init__(
        self,
        store: TableJobStore,
        method: str,
        step: Callable[[], None],
        when: Literal["before", "after"],
    ) -> None:
        self._store = store
        self._method = method
        self._step: Callable[[], None] | None = step
        self._when = when

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if name != self._method or self._step is None:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            step, self._step = self._step, None  # the first call only
            assert step is not None
            if self._when == "before":
                step()
                return real(*args, **kwargs)
            result = real(*args, **kwargs)
            step()
            return result

        return call


def interleaved(
    store: TableJobStore,
    method: str,
    step: Callable[[], None],
    when: Literal["before", "after"] = "after",
) -> TableJobStore:
    """`store`, whose first call of `method` runs `step` before or after it."""
    return cast(TableJobStore, _Interleaved(store, method, step, when))


def on_loop(loop: asyncio.AbstractEventLoop, call: Coroutine[Any, Any, T]) -> T:
    """Run `call` on the test's event loop from a worker thread, and wait for it."""
    return asyncio.run_coroutine_threadsafe(call, loop).result(STEP_SECONDS)
