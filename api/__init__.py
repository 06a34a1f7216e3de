"""The HTTP contract: request bodies, answers, problems, listing queries, the OpenAPI document.

May import `scheduling`, `storage`, `delivery` and `dashboard` (tests/test_layout.py).
"""
