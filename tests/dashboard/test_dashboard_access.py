"""Who may see and drive the dashboard, over real HTTP: the admin key signs in, the session
cookie admits, nothing else does; actions need this session's CSRF token from our origin."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from blueprints import dependencies
from dashboard.sessions import COOKIE_NAME
from tests.support.dashboard_site import ADMIN_KEY, FUNCTION_KEY, DashboardSite

PAGES = [
    "/api/dashboard/jobs",
    "/api/dashboard/recurring",
    "/api/dashboard/failed",
    "/api/dashboard/charts",
]


@asynccontextmanager
async def signed_in(site: DashboardSite) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=site.base_url, timeout=30) as client:
        reply = await client.get(f"/api/dashboard?code={ADMIN_KEY}")
        assert reply.status_code == 303
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("key", [None, FUNCTION_KEY, "wrong"])
async def test_only_the_admin_key_signs_in(dashboard_site: DashboardSite, key: str | None) -> None:
    query = f"?code={key}" if key else ""
    async with httpx.AsyncClient(base_url=dashboard_site.base_url) as client:
        reply = await client.get(f"/api/dashboard{query}")
    assert reply.status_code == 401
    assert "set-cookie" not in reply.headers


async def test_signing_in_sets_a_session_cookie_scripts_and_other_sites_cannot_use(
    dashboard_site: DashboardSite,
) -> None:
    async with httpx.AsyncClient(base_url=dashboard_site.base_url) as client:
        reply = await client.get(f"/api/dashboard?code={ADMIN_KEY}")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/api/dashboard/jobs"  # the key leaves the URL
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=v1.")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/api/dashboard", "Max-Age=3600"):
        assert attribute in cookie
    assert ADMIN_KEY not in cookie


@pytest.mark.parametrize("page", PAGES)
async def test_without_a_session_a_page_shows_nothing_but_how_to_sign_in(
    dashboard_site: DashboardSite, page: str
) -> None:
    job = await dashboard_site.create("log.append", {"message": "secret plans"})
    forged = f"{COOKIE_NAME}=v1.9999999999.AAAAAAAAAAAAAAAAAAAAAA.{'A' * 43}"
    async with httpx.AsyncClient(base_url=dashboard_site.base_url) as client:
        for cookie in (None, forged):
            headers = {"cookie": cookie} if cookie else {}
            reply = await client.get(page, headers=headers)
            assert reply.status_code == 401
            assert "Sign in to the dashboard" in reply.text
            assert job not in reply.text


async def test_a_session_ends_when_its_time_is_up(dashboard_site: DashboardSite) -> None:
    async with signed_in(dashboard_site) as client:
        assert (await client.get("/api/dashboard/jobs")).status_code == 200
        dashboard_site.scheduler.host.advance(timedelta(minutes=61).total_seconds())
        assert (await client.get("/api/dashboard/jobs")).status_code == 401


async def test_every_page_forbids_scripts_framing_and_caching(
    dashboard_site: DashboardSite,
) -> None:
    async with signed_in(dashboard_site) as client:
        for page in PAGES:
            reply = await client.get(page)
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/html")
            csp = reply.headers["content-security-policy"]
            assert "default-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert reply.headers["cache-control"] == "no-store"
            assert "<script" not in reply.text


@pytest.mark.parametrize(
    ("headers", "with_token"),
    [
        ({}, False),  # no CSRF token
        ({"origin": "http://evil.example"}, True),  # another site's form
        ({"sec-fetch-site": "cross-site"}, True),
    ],
)
async def test_an_action_without_our_token_or_from_another_origin_changes_nothing(
    dashboard_site: DashboardSite, headers: dict[str, str], with_token: bool
) -> None:
    job = await dashboard_site.create("log.append", {"message": "keep me"})
    async with signed_in(dashboard_site) as client:
        token = csrf_of((await client.get("/api/dashboard/jobs")).text)
        form = {"csrf": token} if with_token else {}
        reply = await client.post(f"/api/dashboard/jobs/{job}/delete", data=form, headers=headers)
    assert reply.status_code == 403
    assert (await dashboard_site.status(job))["state"] == "pending"


async def test_a_token_of_another_session_is_refused(dashboard_site: DashboardSite) -> None:
    job = await dashboard_site.create("log.append", {"message": "keep me"})
    async with signed_in(dashboard_site) as first, signed_in(dashboard_site) as second:
        token = csrf_of((await first.get("/api/dashboard/jobs")).text)
        reply = await second.post(f"/api/dashboard/jobs/{job}/delete", data={"csrf": token})
    assert reply.status_code == 403
    assert (await dashboard_site.status(job))["state"] == "pending"


async def test_an_action_with_our_token_is_done_and_answers_see_other(
    dashboard_site: DashboardSite,
) -> None:
    job = await dashboard_site.create("log.append", {"message": "delete me"})
    async with signed_in(dashboard_site) as client:
        token = csrf_of((await client.get("/api/dashboard/jobs")).text)
        reply = await client.post(
            f"/api/dashboard/jobs/{job}/delete",
            data={"csrf": token},
            headers={"origin": dashboard_site.base_url},
        )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/api/dashboard/jobs?done=deleted"
    assert (await dashboard_site.status(job))["state"] == "cancelled"


async def test_the_stylesheet_is_public_and_nothing_else_is(dashboard_site: DashboardSite) -> None:
    async with httpx.AsyncClient(base_url=dashboard_site.base_url) as client:
        reply = await client.get("/api/dashboard/assets/dashboard.css")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/css")


async def test_without_the_key_sessions_derive_from_signing_in_is_a_503(
    dashboard_site: DashboardSite,
) -> None:
    settings = dashboard_site.scheduler.settings.model_copy(
        update={"request_fingerprint_key": SecretStr("")}
    )
    with dependencies.overridden(settings=lambda: settings):
        async with httpx.AsyncClient(base_url=dashboard_site.base_url) as client:
            reply = await client.get(f"/api/dashboard?code={ADMIN_KEY}")
    assert reply.status_code == 503
    assert "REQUEST_FINGERPRINT_KEY" in reply.text
    assert "set-cookie" not in reply.headers


async def test_signing_out_deletes_the_cookie(dashboard_site: DashboardSite) -> None:
    async with signed_in(dashboard_site) as client:
        token = csrf_of((await client.get("/api/dashboard/jobs")).text)
        reply = await client.post(
            "/api/dashboard/sign-out",
            data={"csrf": token},
            headers={"origin": dashboard_site.base_url},
        )
        assert reply.status_code == 303
        assert reply.headers["location"] == "/api/dashboard/signed-out"
        assert "Max-Age=0" in reply.headers["set-cookie"]
        assert (await client.get("/api/dashboard/jobs")).status_code == 401


async def test_an_action_the_job_does_not_allow_shows_the_apis_reason_with_its_status(
    dashboard_site: DashboardSite,
) -> None:
    job = await dashboard_site.create("log.append", {"message": "one-time"})
    async with signed_in(dashboard_site) as client:
        token = csrf_of((await client.get("/api/dashboard/jobs")).text)
        reply = await client.post(f"/api/dashboard/jobs/{job}/pause", data={"csrf": token})
        assert reply.status_code == 409
        assert reply.headers["content-type"].startswith("text/html")
        assert "recurring" in reply.text  # the API's own detail: only a recurring job pauses
        unknown = await client.post(f"/api/dashboard/jobs/{job}/explode", data={"csrf": token})
        assert unknown.status_code == 404
    assert (await dashboard_site.status(job))["state"] == "pending"
