"""An httpx transport that vets each connection's destination and connects to the vetted address,
and ends every exchange at one absolute deadline."""

import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, TypeVar

import httpcore
import httpx

from delivery.egress.errors import DestinationRefused
from delivery.egress.policy import EgressPolicy
from scheduling.network.addresses import IPAddress

_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
# httpx logs every request line at INFO ("HTTP Request: POST https://...?token=..."), and
# httpcore its connection steps at DEBUG: both would copy the caller's secret query values
# into the app's logs (Application Insights), where redaction never looks.
_CHATTY_LOGGERS = ("httpx", "httpcore")


_T = TypeVar("_T")


def _remaining(
    deadline: float | None,
    timeout: float | None,
    expired: type[httpcore.TimeoutException],
) -> float | None:
    """The time a socket operation may take: its own timeout, cut to what is left before the
    deadline. Raises `expired` when nothing is left: ConnectTimeout before anything was sent
    (a retry cannot duplicate the request), ReadTimeout or WriteTimeout after."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the exchange's deadline has passed")
    return left if timeout is None else min(timeout, left)


# Name lookups that may be under way at once, across all attempts of this worker. The OS
# resolver cannot be cut short: a lookup given up at its deadline keeps its thread until the
# resolver answers. Beyond this many, an attempt waits for a lookup to end, until its
# deadline (then a retryable connect timeout), instead of leaving another thread behind. An
# address literal needs no lookup and never waits.
MAX_CONCURRENT_LOOKUPS = 16
LOOKUP_THREAD_PREFIX = "name-lookup"
_lookup_slots = threading.BoundedSemaphore(MAX_CONCURRENT_LOOKUPS)
_lookup_pool_lock = threading.Lock()
_lookup_pool: ThreadPoolExecutor | None = None


def _lookups() -> ThreadPoolExecutor:
    """The worker's one lookup pool, made on first use (import time is cold-start time)."""
    global _lookup_pool
    with _lookup_pool_lock:
        if _lookup_pool is None:
            _lookup_pool = ThreadPoolExecutor(
                max_workers=MAX_CONCURRENT_LOOKUPS, thread_name_prefix=LOOKUP_THREAD_PREFIX
            )
        return _lookup_pool


def _within(deadline: float | None, work: Callable[[], _T]) -> _T:
    """`work()` (the name lookup) on the shared lookup pool, given up at the deadline.

    Its slot is freed when the lookup ends, not when it is given up: the slots count the
    pool's busy threads, so a full pool makes the attempt wait for a slot (until its
    deadline) rather than queue a lookup behind lookups that may never end.
    """
    if deadline is None:
        return work()
    remaining = _remaining(deadline, None, httpcore.ConnectTimeout)
    if not _lookup_slots.acquire(timeout=remaining):
        raise httpcore.ConnectTimeout(
            f"no name lookup could start before the deadline: {MAX_CONCURRENT_LOOKUPS} are "
            "still waiting for the resolver"
        )
    try:
        # The deadline may pass while the slot is being given: the slot goes back then too.
        remaining = _remaining(deadline, None, httpcore.ConnectTimeout)
        pending = _lookups().submit(work)
    except BaseException:
        _lookup_slots.release()
        raise
    pending.add_done_callback(lambda _done: _lookup_slots.release())
    try:
        return pending.result(timeout=remaining)
    except FuturesTimeout:
        raise httpcore.ConnectTimeout(
            "name resolution did not finish before the deadline"
        ) from None


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the deadline.

    httpx's timeouts bound each socket operation, not the exchange: a target that sends one
    byte of its headers every 0.4 s would hold an attempt with a 1 s timeout for as long as
    it likes. Cutting each operation's timeout to what is left of one deadline bounds it all.
    """

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(
            max_bytes, _remaining(self._deadline, timeout, httpcore.ReadTimeout)
        )

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        secured = self._inner.start_tls(
            ssl_context,
            server_hostname,
            _remaining(self._deadline, timeout, httpcore.ConnectTimeout),
        )
        return DeadlineStream(secured, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedNetworkBackend(httpcore.NetworkBackend):
    """Resolves each new connection's host once, refuses any denied address, connects to one.

    With a `deadline` (a time.monotonic() value), the lookup, the connect, the TLS handshake
    and every read and write end by then, whatever the target does.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        inner: httpcore.NetworkBackend | None = None,
        deadline: float | None = None,
    ) -> None:
        self._policy = policy
        self._inner = inner or httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to a vetted address of `host`; TLS then verifies the name `host` (SNI)."""
        resolver = self._policy.resolver

        def lookup(name: str, port: int) -> Sequence[IPAddress]:
            return _within(self._deadline, lambda: resolver(name, port))

        try:
            # Vetted here, the lookup alone on the bounded pool: a literal address skips it.
            addresses = self._policy.resolve_and_vet(host, port, resolver=lookup)
        except OSError as error:
            # A name that does not resolve is a failed connection, not a refused destination.
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {error}") from error
        timeout = _remaining(self._deadline, timeout, httpcore.ConnectTimeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        failure: Exception = httpcore.ConnectError(f"no address to connect to for {host!r}")
        for address in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connect to {host!r} timed out")
            try:
                # A literal address: the OS parses it and does no second lookup to be rebound.
                stream = self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
                if self._deadline is None:
                    return stream
                return DeadlineStream(stream, self._deadline)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Refused: an http.call goes to a host and port, never to a local socket file."""
        raise DestinationRefused("Unix domain sockets are not an http.call destination")

    def sleep(self, seconds: float) -> None:
        """Wait between httpcore's connect retries."""
        self._inner.sleep(seconds)


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    """The CA-verifying TLS context, built once per worker: loading the bundle takes ~13 ms,
    and every http.call attempt opens a client."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


class PinnedTransport(httpx.HTTPTransport):
    """httpx.HTTPTransport whose connections go through PinnedNetworkBackend; no env proxies."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        retries: int = 0,
        deadline: float | None = None,
    ) -> None:
        if verify is True:
            ssl_context = _verifying_context()
        else:
            ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits, retries=retries)
        # HTTPTransport has no network_backend argument; httpx 0.28 keeps its httpcore pool in
        # `_pool`, so build the same pool with our backend (tests fail loudly if that changes).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=retries,
            network_backend=PinnedNetworkBackend(policy, deadline=deadline),
        )


def quiet_http_client_logs() -> None:
    """Keep httpx's and httpcore's request logging out of the app's logs (warnings still pass).

    Checked on every client, not once: a host that reconfigures logging later must not bring
    the request lines back.
    """
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def pinned_client(
    policy: EgressPolicy,
    *,
    timeout: float,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An httpx.Client for one http.call attempt: pinned transport, no env proxies or .netrc,
    no redirects, and everything it does (lookup, connect, TLS, request, response headers and
    body) over within `timeout` seconds of its creation."""
    quiet_http_client_logs()
    deadline = time.monotonic() + timeout
    return httpx.Client(
        transport=PinnedTransport(policy, verify=verify, deadline=deadline),
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
    )
