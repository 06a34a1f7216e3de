"""The local durable host's front end against hostile and broken requests: keys before
bodies, cross-site requests from a browser refused, time and size limits per request, and
an HTTP answer (never a dropped connection) to whatever arrives."""

import http.client
import socket
import time
from collections.abc import Iterator

import azure.functions as func
import httpx
import hypothesis
import pytest
from hypothesis import strategies as st

from local_durable_host.app_server import AppServer, Keys, Limits

KEYS = Keys(function_key="function-key-for-tests", master_key="master-key-for-tests")
# Short enough for a test to wait them out; the defaults are Kestrel's (see Limits).
QUICK = Limits(keep_alive_seconds=2.0, headers_seconds=1.0, body_grace_seconds=1.0)

routes = func.FunctionApp()


@routes.route(route="items/{item_id}", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=201)


@routes.route(route="admin/reset", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def reset(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@pytest.fixture
def server() -> Iterator[AppServer]:
    running = AppServer(routes, lambda: "{}", KEYS, limits=QUICK)
    try:
        yield running
    finally:
        running.close()


def connect(server: AppServer, timeout: float = 5.0) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def exchange(server: AppServer, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send `raw` and read until the server closes or answers `Connection: close`."""
    with connect(server, timeout) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> bytes:
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if length is not None and len(body) >= length:
            return received


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1])


def request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body and not any(name.lower() == "content-length" for name in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


MASTER = {"x-functions-key": KEYS.master_key}


# -- keys first --------------------------------------------------------------------------


def test_the_key_is_checked_before_the_body_is_read(server: AppServer) -> None:
    # 50 MB announced, none sent: a caller without the key gets its 401 at once, and the
    # host never waits for (or holds) a body it would throw away.
    head = request("POST", "/api/items/1", {"Content-Length": "50000000"})
    started = time.monotonic()
    answer = exchange(server, head, timeout=5)
    assert status_of(answer) == 401
    assert time.monotonic() - started < QUICK.body_grace_seconds


# -- cross-site requests from a browser ------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},  # a sandboxed frame, or a redirect across sites
        {"Origin": "http://127.0.0.1:8000"},  # another port on this machine: another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_state_changing_request_from_another_site_is_refused(
    server: AppServer, headers: dict[str, str]
) -> None:
    answer = exchange(server, request("POST", "/api/admin/reset?code=" + KEYS.master_key, headers))
    assert status_of(answer) == 403
    assert b"another site" in answer


def test_a_request_from_its_own_origin_or_no_browser_is_served(server: AppServer) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    own = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    assert (
        status_of(exchange(server, request("POST", "/api/admin/reset", {**MASTER, **own}))) == 204
    )
    same = {**MASTER, "Sec-Fetch-Site": "same-origin"}
    assert status_of(exchange(server, request("POST", "/api/admin/reset", same))) == 204
    assert status_of(exchange(server, request("POST", "/api/admin/reset", MASTER))) == 204
    # Reading is not refused: a page of another site cannot see the answer anyway.
    cross_read = {**MASTER, "Sec-Fetch-Site": "cross-site"}
    assert status_of(exchange(server, request("GET", "/api/items/1", cross_read))) == 201


# -- what the host answers to broken requests --------------------------------------------


@pytest.mark.parametrize(
    "length",
    # Read as Latin-1, as HTTP/1.1 headers are: "\xb2" is "²", a digit to str.isdigit().
    [b"\xb2", b"1\xb9", "١٢".encode(), b"12abc", b"-1", b"0x10", b" ", b"1 2"],
)
def test_a_content_length_that_is_not_ascii_digits_is_a_400(
    server: AppServer, length: bytes
) -> None:
    raw = request("POST", "/api/items/1", {**MASTER, "Content-Length": "LENGTH"})
    assert status_of(exchange(server, raw.replace(b"LENGTH", length))) == 400


def test_two_different_content_lengths_are_a_400(server: AppServer) -> None:
    raw = (
        "POST /api/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nx-functions-key: "
        f"{KEYS.master_key}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    ).encode()
    assert status_of(exchange(server, raw)) == 400


@pytest.mark.parametrize("size", [b"0x2", b"+2", b"2_0", b"\xd9\xa2", b"", b"ffffffffffffffffffff"])
def test_a_chunk_size_that_is_not_plain_hex_is_refused(server: AppServer, size: bytes) -> None:
    head = request("POST", "/api/items/1", {**MASTER, "Transfer-Encoding": "chunked"})
    answer = exchange(server, head + size + b"\r\nab\r\n0\r\n\r\n")
    assert status_of(answer) in (400, 413)


def test_a_chunked_body_arrives_whole(server: AppServer) -> None:
    head = request("POST", "/api/items/1", {**MASTER, "Transfer-Encoding": "chunked"})
    answer = exchange(server, head + b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
    assert status_of(answer) == 201
    assert answer.endswith(b"\r\n\r\nabcde")


@pytest.mark.parametrize("host", ["[::1]", "[::1]:7071", "localhost", "127.0.0.1:7071"])
def test_every_loopback_host_form_is_served(server: AppServer, host: str) -> None:
    raw = request("POST", "/api/admin/reset", MASTER).replace(
        b"Host: 127.0.0.1", b"Host: " + host.encode()
    )
    assert status_of(exchange(server, raw)) == 204


@pytest.mark.parametrize(
    "host", ["[::1", "[::1]x", "[::2]", "localhost:", "localhost:x", "127.0.0.1.nip.io"]
)
def test_a_host_that_only_looks_like_loopback_is_refused(server: AppServer, host: str) -> None:
    raw = request("GET", "/api/items/1", MASTER).replace(
        b"Host: 127.0.0.1", b"Host: " + host.encode()
    )
    assert status_of(exchange(server, raw)) == 400


def test_a_request_line_longer_than_8_kib_is_a_414(server: AppServer) -> None:
    answer = exchange(server, request("GET", "/api/items/1?q=" + "a" * 9000, MASTER))
    assert status_of(answer) == 414


def test_headers_over_32_kib_in_all_are_a_431(server: AppServer) -> None:
    many = {f"X-Filler-{index}": "v" * 1000 for index in range(40)}
    assert status_of(exchange(server, request("GET", "/api/items/1", {**MASTER, **many}))) == 431


# -- time limits ---------------------------------------------------------------------------


def test_headers_that_do_not_arrive_in_time_get_a_408_and_free_their_thread(
    server: AppServer,
) -> None:
    # Many half-sent requests, as a slow or hostile client leaves them: each is answered
    # once the header time is up, and a whole request is served meanwhile.
    held = [connect(server, timeout=10) for _ in range(50)]
    try:
        for sock in held:
            sock.sendall(b"GET /api/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = exchange(server, request("GET", "/api/items/1", MASTER))
        assert status_of(answer) == 201
        answers = [read_answer(sock) for sock in held]
    finally:
        for sock in held:
            sock.close()
    assert {status_of(answer) for answer in answers} == {408}


def test_a_header_sent_a_byte_at_a_time_cannot_outlast_the_header_time(
    server: AppServer,
) -> None:
    with connect(server, timeout=10) as sock:
        sock.sendall(b"GET /api/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        answer = b""
        try:
            for _ in range(100):  # each byte well within any per-read timeout
                sock.sendall(b"X")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock)
    assert status_of(answer) == 408
    assert time.monotonic() - started < QUICK.headers_seconds + 2


def test_a_body_slower_than_the_minimum_rate_gets_a_408(server: AppServer) -> None:
    with connect(server, timeout=10) as sock:
        sock.sendall(request("POST", "/api/items/1", {**MASTER, "Content-Length": "1000"}))
        try:
            for _ in range(60):
                sock.sendall(b"x")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock)
    assert status_of(answer) == 408


def test_an_idle_kept_alive_connection_is_closed(server: AppServer) -> None:
    with connect(server, timeout=10) as sock:
        sock.sendall(
            request("GET", "/api/items/1", MASTER).replace(b"Connection: close", b"X-A: b")
        )
        first = read_answer(sock)
        assert status_of(first) == 201
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the host, nothing said
        assert time.monotonic() - started < QUICK.keep_alive_seconds + 2


# -- anything at all gets an answer --------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        b"GET",
        b"POST",
        b"PATCH",
        b"BREW",
        b"G\xc3\x89T",
        b"",
        b" ",
        b"\x00",
        b"/api/items/1",
        b"/api/admin/reset",
        b"*",
        b"http://127.0.0.1/api/items/1",
        b"//x",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"HTTP/1.1x",
        b"\r\n",
        b"\n",
        b":",
        b"Host",
        b"127.0.0.1",
        b"[::1]",
        b"Content-Length",
        b"Transfer-Encoding",
        b"chunked",
        b"Expect",
        b"100-continue",
        b"Origin",
        b"null",
        b"x-functions-key",
        KEYS.master_key.encode(),
        b"\xff\xfe",
        b"1",
        b"99999999999999999999",
        b"\xd9\xa1",
        b"\t",
        b"Connection",
        b"keep-alive",
        b"0",
    ]
)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[AppServer]:
    running = AppServer(routes, lambda: "{}", KEYS, limits=QUICK)
    try:
        yield running
    finally:
        running.close()


@hypothesis.settings(
    max_examples=150, deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
)
@hypothesis.given(head=st.lists(_TOKENS, max_size=30), tail=st.binary(max_size=64))
def test_whatever_arrives_gets_an_http_answer_never_a_dropped_connection(
    shared_server: AppServer, head: list[bytes], tail: bytes
) -> None:
    raw = b" ".join(head) + b"\r\n\r\n" + tail
    with connect(shared_server, timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        answer = read_answer(sock)
    if raw.strip(b"\r\n \t") == b"":
        return  # nothing was asked: a closed connection is the answer
    assert answer.startswith(b"HTTP/1."), (raw, answer[:200])
    # 505 is the host's word for a version other than HTTP/1.x (Kestrel's too).
    assert status_of(answer) < 500 or status_of(answer) == 505, (raw, answer[:300])


def test_the_extension_api_refuses_a_browser_request_from_another_site() -> None:
    # It needs no key (as the extension's, behind the host's system key): only the name and
    # the origin keep a page in the developer's browser from starting or ending instances.
    from datetime import UTC, datetime

    from local_durable_host.engine import DurableHost
    from tests.support import toy_app

    with DurableHost(toy_app.app, datetime(2026, 12, 1, tzinfo=UTC)) as host:
        target = f"{host.rpc_base_url}instances/x/terminate?reason=r"
        for headers in ({"Origin": "http://attacker.example"}, {"Sec-Fetch-Site": "cross-site"}):
            assert httpx.post(target, headers=headers).status_code == 403
        assert httpx.post(target).status_code == 404  # no such instance: it was heard


def test_the_extension_api_keeps_a_connection_until_it_refuses_or_closes() -> None:
    # The SDK client pools its connections: one kept alive must be told when it ends, or its
    # next call goes into a closed connection; and a closed host serves none of them.
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    from local_durable_host.engine import DurableHost
    from tests.support import toy_app

    host = DurableHost(toy_app.app, datetime(2026, 12, 1, tzinfo=UTC))
    address = urlsplit(host.rpc_base_url)
    path = f"{address.path}instances/x/terminate?reason=r"
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        answers = []
        for _ in range(2):
            connection.request("POST", path)
            answer = connection.getresponse()
            answer.read()
            answers.append((answer.status, answer.getheader("Connection"), connection.sock))
        assert [status for status, _, _ in answers] == [404, 404]
        assert answers[0][2] is not None
        assert answers[0][2] is answers[1][2], "not kept alive"

        connection.request("POST", path, headers={"Origin": "http://attacker.example"})
        refused = connection.getresponse()
        refused.read()
        assert (refused.status, refused.getheader("Connection")) == (403, "close")

        connection.request("POST", path)  # on a new connection, kept alive
        connection.getresponse().read()
        host.close()
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _answer_to_post(connection, path)
    finally:
        connection.close()
        host.close()


def _answer_to_post(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("POST", path)
    return connection.getresponse().status


def test_a_client_resetting_a_kept_alive_connection_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # The SDK's pool drops idle connections as it likes: no traceback in the developer's console.
    import struct
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    from local_durable_host.engine import DurableHost
    from tests.support import toy_app

    with DurableHost(toy_app.app, datetime(2026, 12, 1, tzinfo=UTC)) as host:
        address = urlsplit(host.rpc_base_url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
        assert _answer_to_post(connection, f"{address.path}instances/x/terminate") == 404
        assert connection.sock is not None
        # A reset (RST), not a polite close: linger on, for no time.
        connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        time.sleep(0.5)  # the server's thread reads the reset
    assert "Traceback" not in capfd.readouterr().err
