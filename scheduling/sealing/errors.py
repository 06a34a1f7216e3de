"""What sealing raises: one base class, so a caller can catch every sealing failure at once."""


class SealingError(Exception):
    """A payload could not be sealed or unsealed.

    Raised for an altered record, associated data that differs from the seal's, a key id no
    configured key knows, or a key service that refused. Messages name fields, settings and
    key ids only: never key material, never plaintext.
    """


class SealingNotConfigured(SealingError):
    """No usable key-encryption key: a setting is missing or malformed (the message names it)."""


class SealingUnavailable(SealingError):
    """The key service could not be reached or answered with a transient error: try again later.

    Unlike its base class, this says nothing about the record, which may be intact.
    """
