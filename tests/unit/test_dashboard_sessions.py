"""Dashboard sessions: a cookie stands for a session only as minted, and only until it ends."""

from datetime import UTC, datetime, timedelta

from dashboard.sessions import (
    cookie_value,
    csrf_matches,
    new_session,
    read_session,
    session_key,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
KEY = session_key(bytes(range(32)))
HOUR = timedelta(hours=1)


def test_a_minted_cookie_reads_back_as_its_session_until_it_expires() -> None:
    session, token = new_session(KEY, NOW, HOUR)
    assert read_session(KEY, token, NOW + timedelta(minutes=59)) == session
    assert read_session(KEY, token, NOW + HOUR) is None


def test_a_cookie_under_another_key_or_edited_is_refused() -> None:
    _, token = new_session(KEY, NOW, HOUR)
    assert read_session(session_key(bytes(range(1, 33))), token, NOW) is None
    version, expires, nonce, mac = token.split(".")
    longer = f"{version}.{int(expires) + 86400}.{nonce}.{mac}"
    assert read_session(KEY, longer, NOW) is None
    for junk in ("", "v1", token + "x", "v2" + token[2:], "x" * 10_000):
        assert read_session(KEY, junk, NOW) is None


def test_the_session_key_is_not_the_key_it_comes_from() -> None:
    assert session_key(bytes(range(32))) != bytes(range(32))


def test_a_csrf_token_belongs_to_one_session() -> None:
    first, _ = new_session(KEY, NOW, HOUR)
    second, _ = new_session(KEY, NOW, HOUR)
    assert csrf_matches(KEY, first, first.csrf_token(KEY))
    assert not csrf_matches(KEY, second, first.csrf_token(KEY))
    assert not csrf_matches(KEY, first, None)
    assert not csrf_matches(KEY, first, "")


def test_the_cookie_is_found_among_others() -> None:
    assert cookie_value("a=1; scheduler_dashboard=v1.x; b=2") == "v1.x"
    assert cookie_value("a=1") is None
    assert cookie_value(None) is None
