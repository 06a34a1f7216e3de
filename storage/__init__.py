"""Where jobs and their logs are kept: Table Storage, the job store, job log stores, sealing keys.

May import `scheduling` and nothing else of ours (tests/test_layout.py).
"""
