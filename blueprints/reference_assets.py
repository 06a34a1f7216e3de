"""Swagger UI's files, read from the installed `swagger-ui-py` package (never from a CDN)."""

import functools
import importlib.util
from pathlib import Path

from scheduling.openapi import REFERENCE_ASSETS


@functools.cache
def _static_dir() -> Path:
    # find_spec locates the package without running its __init__ (which loads jinja2 and
    # the web-framework adapters this app does not use).
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (requirements.txt pins it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@functools.cache
def read_asset(name: str) -> bytes | None:
    """The bytes of one of the page's assets; None for any other name (no path is built
    from the caller's text)."""
    if name not in REFERENCE_ASSETS:
        return None
    return (_static_dir() / name).read_bytes()
