"""The scheduler's domain: what a job is, when it fires, and what firing does.

Nothing here imports the Functions or Durable SDKs, so all of it runs and is
tested without a host.
"""
