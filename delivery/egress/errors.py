"""The one exception the egress guard raises."""


class DestinationRefused(ValueError):
    """An http.call destination the egress policy refuses; `reason` says why in plain words."""

    # A ValueError so that a pydantic validator calling `vet_url` turns it into a validation error.
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
