"""Which identity the Azure Monitor exporter authenticates as, from the host's setting."""

import pytest

from blueprints.telemetry import entra_identity


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("ClientId=1b2c;Authorization=AAD", {"client_id": "1b2c"}),  # the infra's form
        ("Authorization=aad;ClientId=1b2c", {"client_id": "1b2c"}),
        ("Authorization=AAD", {}),  # the system-assigned identity
        ("ClientId=1b2c", None),  # no Entra authorization asked for
        ("", None),
        (None, None),
    ],
)
def test_entra_identity(setting: str | None, expected: dict[str, str] | None) -> None:
    assert entra_identity(setting) == expected
