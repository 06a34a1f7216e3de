"""Running what a job asks for: the egress guard, prompt handlers, callbacks, one attempt.

May import `scheduling` and `storage` (tests/test_layout.py).
"""
