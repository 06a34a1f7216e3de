"""Thin adapters between the Functions triggers and the `scheduling` domain."""
