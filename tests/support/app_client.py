"""Call the app's HTTP functions the way the Functions host would, by method and path."""

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from function_app import app
from local_durable_host.worker_calls import index_functions

BASE_URL = "http://127.0.0.1:7071"


@dataclass(frozen=True)
class Route:
    function_name: str
    methods: frozenset[str]
    pattern: re.Pattern[str]
    user_function: Any


def _routes() -> list[Route]:
    routes = []
    for function in index_functions(app):
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] != "httpTrigger":
                continue
            template = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", binding["route"])
            routes.append(
                Route(
                    function_name=str(function.get_function_name()),
                    methods=frozenset(method.upper() for method in binding["methods"]),
                    pattern=re.compile(f"/api/{template}"),
                    user_function=function.get_user_function(),
                )
            )
    return routes


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)


class AppClient:
    """Routes a request to the matching function and calls it with a real HttpRequest."""

    def __init__(self, client_binding: str) -> None:
        self.client_binding = client_binding
        self.routes = _routes()

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        parts = urlsplit(url)
        for route in self.routes:
            match = route.pattern.fullmatch(parts.path)
            if match and method.upper() in route.methods:
                break
        else:
            raise LookupError(f"no function serves {method} {parts.path}")
        request_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            request_headers.setdefault("Content-Type", "application/json")
        request = func.HttpRequest(
            method=method.upper(),
            url=f"{BASE_URL}{parts.path}" + (f"?{parts.query}" if parts.query else ""),
            headers=request_headers,
            params=dict(parse_qsl(parts.query)),
            route_params=match.groupdict(),
            body=body or b"",
        )
        response: func.HttpResponse = await route.user_function(
            req=request, client=self.client_binding
        )
        reply_headers = {name.lower(): value for name, value in response.headers.items()}
        # The worker turns `mimetype` into the Content-Type header.
        reply_headers.setdefault("content-type", response.mimetype)
        return Reply(status=response.status_code, headers=reply_headers, body=response.get_body())

    async def get(self, url: str) -> Reply:
        return await self.request("GET", url)

    async def post(self, url: str, json_body: Any = None) -> Reply:
        return await self.request("POST", url, json_body=json_body)

    async def delete(self, url: str) -> Reply:
        return await self.request("DELETE", url)
