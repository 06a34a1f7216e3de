"""The API's own description: the OpenAPI document and a reference page, both anonymous.

Anonymous because they describe the API and hold nothing secret (no key, no job), and a
browser opening the page cannot send a function key. The page is Swagger UI, whose script
and style sheet come from the `swagger-ui-py` package (requirements.txt) and are served by
this app, so the page needs no CDN and works wherever the app runs.
"""

import azure.durable_functions as df
import azure.functions as func

from blueprints.http_io import json_response, origin_of, problem_responses

bp = df.Blueprint()
ANONYMOUS = func.AuthLevel.ANONYMOUS
_ASSET_TYPES = {".css": "text/css", ".js": "text/javascript"}
# The page runs no inline script (the policy allows none): Swagger UI is started by an asset.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Durable Scheduler API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="reference"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/reference.js"></script>
</body>
</html>
"""
# What the browser may do with the page: load from this origin only (Swagger UI's style
# sheet draws its icons as data: images), never be framed, never guess a content type.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@bp.route(route="openapi.json", methods=["GET"], auth_level=ANONYMOUS)
@problem_responses
async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    from api.openapi import openapi_document

    return json_response(openapi_document(origin_of(req)))


@bp.route(route="docs", methods=["GET"], auth_level=ANONYMOUS)
async def api_reference(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(_PAGE, mimetype="text/html", charset="utf-8", headers=SECURITY_HEADERS)


@bp.route(route="docs/{asset}", methods=["GET"], auth_level=ANONYMOUS)
@problem_responses
async def api_reference_asset(req: func.HttpRequest) -> func.HttpResponse:
    from api.problems import not_found
    from blueprints.reference_assets import read_asset

    name = req.route_params.get("asset", "")
    content = read_asset(name)
    if content is None:
        raise not_found(f"no asset named {name[:64]!r}")
    return func.HttpResponse(
        content,
        mimetype=_ASSET_TYPES[name[name.rfind(".") :]],
        # The file only changes with the package's pin, i.e. with a deployment.
        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"},
    )
