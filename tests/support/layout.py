"""The app's own top-level packages, in layer order (docs/ARCHITECTURE.md)."""

APP_PACKAGES = ("scheduling", "storage", "delivery", "dashboard", "api", "blueprints")
