"""The app over real HTTP, and headless Chromium, for the dashboard's tests."""

from tests.support.browser import chromium as chromium
from tests.support.dashboard_site import dashboard_site as dashboard_site
