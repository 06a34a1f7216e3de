"""A job's name is text on every page: labels and hosts are escaped even if a record (read
from a store the API did not write, or under an older rule) carries markup in them."""

from dataclasses import dataclass, field

from blueprints.dashboard_web import environment

HOSTILE = '<img src=x onerror="alert(1)">'


@dataclass
class Job:
    transaction_id: str = "3f0c2a57-8d4e-4c1b-9a6f-0b1c2d3e4f50"
    prompt_type: str = "http.call"
    destination: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def test_labels_kinds_and_hosts_are_escaped_in_a_jobs_name() -> None:
    macros = environment().get_template("jobs.html").make_module({"base": "/api/dashboard"})
    for job in (
        Job(labels={HOSTILE: HOSTILE}),
        Job(prompt_type=HOSTILE, destination=f"POST https://{HOSTILE}"),
    ):
        for shown in (str(macros.job_link(job)), str(macros.name_in_text(job))):  # type: ignore[attr-defined]
            assert "<img" not in shown
            assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in shown
