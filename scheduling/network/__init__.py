"""Which network destinations and ports a job may ever reach: pure rules.

The settings check an operator's allowlist against them; the egress guard in
`delivery.egress` applies them to every URL and every connection.
"""
