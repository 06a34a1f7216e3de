"""The app over real HTTP, and headless Chromium, for the dashboard's tests."""

pytest_plugins = ["tests.support.dashboard_site", "tests.support.browser"]
