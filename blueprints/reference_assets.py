"""The reference page's files: Swagger UI's, read from the installed `swagger-ui-py` package
(never from a CDN), and the script that starts it, ours."""

import functools
import importlib.util
from pathlib import Path

from api.operations import REFERENCE_ASSETS


@functools.cache
def _static_dir() -> Path:
    # find_spec locates the package without running its __init__ (which loads jinja2 and
    # the web-framework adapters this app does not use).
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (requirements.txt pins it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


# Starts Swagger UI on the page. validatorUrl "none": by default Swagger UI's standalone
# layout shows a badge that sends every visitor's browser, with the document's URL, to
# validator.swagger.io (it skips that only for a document on localhost).
START_SCRIPT = """SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#reference",
  deepLinking: true,
  validatorUrl: "none",
});
"""
OWN_ASSETS = {"reference.js": START_SCRIPT.encode()}


@functools.cache
def read_asset(name: str) -> bytes | None:
    """The bytes of one of the page's assets; None for any other name (no path is built
    from the caller's text)."""
    if name not in REFERENCE_ASSETS:
        return None
    if name in OWN_ASSETS:
        return OWN_ASSETS[name]
    return (_static_dir() / name).read_bytes()
