"""An httpx transport that vets each connection's destination and connects to the vetted address."""

import functools
import logging
import ssl
import time
from collections.abc import Iterable

import httpcore
import httpx

from scheduling.egress.errors import DestinationRefused
from scheduling.egress.policy import EgressPolicy

_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
# httpx logs every request line at INFO ("HTTP Request: POST https://...?token=..."), and
# httpcore its connection steps at DEBUG: both would copy the caller's secret query values
# into the app's logs (Application Insights), where redaction never looks.
_CHATTY_LOGGERS = ("httpx", "httpcore")


class PinnedNetworkBackend(httpcore.NetworkBackend):
    """Resolves each new connection's host once, refuses any denied address, connects to one."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.NetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to a vetted address of `host`; TLS then verifies the name `host` (SNI)."""
        try:
            addresses = self._policy.resolve_and_vet(host, port)
        except OSError as error:
            # A name that does not resolve is a failed connection, not a refused destination.
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {error}") from error
        deadline = None if timeout is None else time.monotonic() + timeout
        failure: Exception = httpcore.ConnectError(f"no address to connect to for {host!r}")
        for address in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connect to {host!r} timed out")
            try:
                # A literal address: the OS parses it and does no second lookup to be rebound.
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
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
            network_backend=PinnedNetworkBackend(policy),
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
    timeout: httpx.Timeout | float,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An httpx.Client for http.call: pinned transport, no env proxies or .netrc, no redirects."""
    quiet_http_client_logs()
    return httpx.Client(
        transport=PinnedTransport(policy, verify=verify),
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
    )
