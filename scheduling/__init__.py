"""The scheduler's domain: what a job is, when it fires, whether it retries, what may be shown.

Pure decisions only: nothing here imports an Azure SDK, an HTTP client or a web framework,
nor any other package of ours (tests/test_layout.py), so all of it runs and is tested
without a host, a store or a network.
"""
