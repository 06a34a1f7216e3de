"""What a URL the scheduler did not choose shows (a callback URL, a redirect's Location):
its origin, never userinfo, path, query or fragment, whatever they are called."""

import pytest

from scheduling.redaction import MAX_URL_CHARS, REDACTED, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h.example/t0k3n/path?x=1", f"https://h.example/{REDACTED}"),
        ("https://h.example?t=secret", f"https://h.example/{REDACTED}"),
        ("https://h.example/?jwt=a.b.c", f"https://h.example/{REDACTED}"),
        ("https://h.example/p?to=https://x.example/?token=S", f"https://h.example/{REDACTED}"),
        ("https://user:pa55@h.example:8443/", "https://h.example:8443"),
        ("https://h.example#token=frag", f"https://h.example/{REDACTED}"),
        ("http://[2001:db8::1]:8080/a?b=c", f"http://[2001:db8::1]:8080/{REDACTED}"),
        ("https://h.example", "https://h.example"),
        ("https://h.example/", "https://h.example"),
        ("/relative/path?code=1&x=2", REDACTED),
        ("?page=2", REDACTED),
        ("/", ""),
        ("", ""),
        # Already shown by this rule (or by the one before it): shown the same or less.
        (f"https://h.example/{REDACTED}", f"https://h.example/{REDACTED}"),
        (f"https://h.example/{REDACTED}?t=S", f"https://h.example/{REDACTED}"),
    ],
)
def test_only_the_origin_is_ever_shown(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_huge_url_is_cut_before_it_is_read() -> None:
    # One pass over at most MAX_URL_CHARS: the review's "?a" * 16384 took 10.8 s before.
    shown = redact_url("https://h.example/?" + "?a" * 200_000 + "&code=never-read")
    assert shown == f"https://h.example/{REDACTED}"
    assert len(redact_url("https://" + "h" * 200_000)) <= len("https://") + MAX_URL_CHARS
