"""Labels: a few short key=value pairs a caller puts on a job to find and act on it later.

Labels are kept and shown in clear (the status, the listing, the job store's label index):
they are for grouping (`tenant=acme`, `campaign=spring`), never for secrets.

The limits keep them small enough to be keys of the label index (Table Storage keys may not
hold `/`, `\\`, `#`, `?` or control characters) and to check in linear time: every key and
value is bounded before a pattern sees it, and pydantic's patterns are linear (Rust regex).
"""

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

MAX_LABELS = 10
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 63
# Kubernetes label keys without a prefix: lower-case alphanumerics, `.`, `_`, `-` inside.
LABEL_KEY_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
# Alphanumerics and `.`, `_`, `-`, `:`: no `=` (a filter is `key=value`), nothing a URL or a
# table key would have to escape.
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9._:-]{1,63}$"
# `key=value` of a query's `label` parameter.
LABEL_FILTER_PATTERN = f"{LABEL_KEY_PATTERN[:-1]}={LABEL_VALUE_PATTERN[1:]}"

LabelKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LABEL_KEY, pattern=LABEL_KEY_PATTERN)
]
LabelValue = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LABEL_VALUE, pattern=LABEL_VALUE_PATTERN)
]
LABELS_DESCRIPTION = (
    f"up to {MAX_LABELS} key=value pairs to find the job by (`GET /api/schedule?label=k=v`) "
    "and cancel it with others (`DELETE /api/schedule?label=k=v`). Keys: 1-63 lower-case "
    "letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit (Kubernetes "
    "label keys); values: 1-63 letters, digits, `.`, `_`, `-`, `:`. Stored and shown in "
    "clear: never put a secret in a label."
)


def _sorted(labels: dict[str, str]) -> dict[str, str]:
    # One set of labels, one form: the fingerprint and the index see the same pairs.
    return dict(sorted(labels.items()))


Labels = Annotated[
    dict[LabelKey, LabelValue],
    Field(max_length=MAX_LABELS, description=LABELS_DESCRIPTION),
    AfterValidator(_sorted),
]


class InvalidLabelFilter(ValueError):
    pass


def parse_label_filter(text: str) -> tuple[str, str]:
    """`key=value` of a query's `label` parameter, checked as a label is."""
    if len(text) > MAX_LABEL_KEY + 1 + MAX_LABEL_VALUE:
        raise InvalidLabelFilter("label must be key=value, each at most 63 characters")
    key, equals, value = text.partition("=")
    if not equals:
        raise InvalidLabelFilter("label must be key=value (e.g. label=tenant=acme)")
    if not _is_key(key) or not _is_value(value):
        raise InvalidLabelFilter(
            "label must be key=value: a key of lower-case letters, digits, `.`, `_`, `-` "
            "(starting and ending with a letter or digit), a value of letters, digits, "
            "`.`, `_`, `-`, `:`; each 1-63 characters"
        )
    return key, value


_KEY_INNER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_KEY_EDGE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_VALUE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


def _is_key(key: str) -> bool:
    # The key pattern, character by character (linear, and no regex to keep in step).
    return (
        0 < len(key) <= MAX_LABEL_KEY
        and key[0] in _KEY_EDGE
        and key[-1] in _KEY_EDGE
        and all(char in _KEY_INNER for char in key)
    )


def _is_value(value: str) -> bool:
    return 0 < len(value) <= MAX_LABEL_VALUE and all(char in _VALUE for char in value)


def has_labels(labels: dict[str, str], wanted: list[tuple[str, str]]) -> bool:
    """Whether a job's labels hold every wanted pair (several filters: all of them)."""
    return all(labels.get(key) == value for key, value in wanted)
