"""The admin dashboard's decisions, free of the Functions SDK: sessions, charts, timelines.

May import `scheduling` only (tests/test_layout.py); its routes are in blueprints/dashboard*.py.
"""
