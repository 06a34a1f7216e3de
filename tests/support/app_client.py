"""Call the app's HTTP functions the way the Functions host would, by method and path."""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from function_app import app
from local_durable_host.http_functions import http_functions

BASE_URL = "http://127.0.0.1:7071"


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
        # The local host's route table: the same precedence (literal routes first), no keys.
        self.routes = http_functions(app)

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
        arguments: dict[str, Any] = {route.request_parameter: request}
        arguments.update({name: self.client_binding for name in route.client_parameters})
        response: func.HttpResponse = await route.user_function(**arguments)
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
