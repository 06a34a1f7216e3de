"""The GitHub workflows and scripts follow the security review's supply-chain rules.

- Every action is pinned to a full commit SHA (a tag can be moved to other code; a commit
  cannot), with the release tag it was taken from in a trailing comment.
- The deploy job runs in a GitHub environment, so that its protection rules gate it.
- Core Tools is installed at an exact version wherever a workflow or script installs it.

No YAML parser is in the dev dependencies, so the checks read the files line by line, as
the workflow tests in test_bicep.py do. Like there, `*_problems` functions list what is
wrong, and the mutation test proves each check notices a regression.
"""

from __future__ import annotations

import re

import pytest

from .bicep_model import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SCRIPTS = REPO_ROOT / "scripts"

# `uses: owner/repo[/path]@<ref>  # <comment>`, as a step key or after the step's dash.
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)[ \t]*(?:#\s*(?P<comment>.*?))?\s*$")
PINNED = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@[0-9a-f]{40}")
RELEASE_TAG = re.compile(r"v\d+\.\d+\.\d+")
CORE_TOOLS_NPM = re.compile(r"\bnpm\s+(?:install|i)\b[^\n]*?\bazure-functions-core-tools@(\S+)")
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")


def workflow_texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(WORKFLOWS.glob("*.yml"))}


def script_texts() -> dict[str, str]:
    return {f"scripts/{p.name}": p.read_text(encoding="utf-8") for p in sorted(SCRIPTS.iterdir())}


def pin_problems(workflows: dict[str, str]) -> list[str]:
    problems: list[str] = []
    seen: dict[str, set[str]] = {}  # action -> the pins it has anywhere
    for name, text in workflows.items():
        for number, line in enumerate(text.splitlines(), start=1):
            match = USES.match(line)
            if not match:
                continue
            ref, comment = match.group("ref"), match.group("comment") or ""
            where = f"{name}:{number}: uses: {ref}"
            if not PINNED.fullmatch(ref):
                problems.append(f"{where} is not pinned to a full commit SHA (owner/repo@<40 hex>)")
                continue
            if not RELEASE_TAG.fullmatch(comment):
                problems.append(f"{where} needs the release it pins as `# vX.Y.Z`, not {comment!r}")
            action, sha = ref.split("@")
            seen.setdefault(action, set()).add(f"{sha} {comment}")
    for action, pins in seen.items():
        if len(pins) > 1:
            problems.append(f"{action} is pinned differently across workflows: {sorted(pins)}")
    if not seen:
        problems.append("no `uses:` found in .github/workflows: is the parser still right?")
    return problems


def jobs(text: str) -> dict[str, str]:
    """Each job's block of a workflow (the lines indented under `jobs:` and its key)."""
    section = re.search(r"^jobs:\n((?:[ \t]+.*\n|[ \t]*\n)*)", text + "\n", re.MULTILINE)
    if not section:
        return {}
    blocks = re.split(r"^  ([A-Za-z0-9_-]+):[ \t]*\n", section.group(1), flags=re.MULTILINE)
    return dict(zip(blocks[1::2], blocks[2::2], strict=True))


def environment_problems(deploy: str) -> list[str]:
    """Every job that provisions or deploys names a GitHub environment."""
    problems: list[str] = []
    found = jobs(deploy)
    deploying = {n: b for n, b in found.items() if re.search(r"\bazd (?:provision|deploy)\b", b)}
    if not deploying:
        return ["deploy.yml: no job runs azd provision or azd deploy"]
    for name, block in deploying.items():
        inline = re.search(r"^    environment:[ \t]*([^\s#]+)", block, re.MULTILINE)
        nested = re.search(r"^    environment:[ \t]*\n      name:[ \t]*([^\s#]+)", block, re.M)
        if not (inline or nested):
            problems.append(
                f"deploy.yml: job {name} must declare `environment:` (protection rules)"
            )
    return problems


def core_tools_problems(files: dict[str, str]) -> list[str]:
    problems: list[str] = []
    versions: set[str] = set()
    for name, text in files.items():
        for version in CORE_TOOLS_NPM.findall(text):
            version = version.strip("\"'")
            versions.add(version)
            if not EXACT_VERSION.fullmatch(version):
                problems.append(
                    f"{name}: azure-functions-core-tools@{version} is not an exact version"
                )
    if len(versions) > 1:
        problems.append(f"Core Tools is installed at several versions: {sorted(versions)}")
    return problems


def all_problems(workflows: dict[str, str], scripts: dict[str, str]) -> list[str]:
    return [
        *pin_problems(workflows),
        *environment_problems(workflows["deploy.yml"]),
        *core_tools_problems({**workflows, **scripts}),
    ]


def test_every_action_is_pinned_to_a_commit() -> None:
    problems = pin_problems(workflow_texts())
    assert not problems, "\n".join(problems)


def test_the_deploy_job_runs_in_an_environment() -> None:
    problems = environment_problems(workflow_texts()["deploy.yml"])
    assert not problems, "\n".join(problems)


def test_core_tools_is_installed_at_an_exact_version() -> None:
    workflows = workflow_texts()
    installs = [name for name, text in workflows.items() if CORE_TOOLS_NPM.search(text)]
    assert installs == ["live.yml"], f"expected the live workflow to install Core Tools: {installs}"
    problems = core_tools_problems({**workflows, **script_texts()})
    assert not problems, "\n".join(problems)


MUTATIONS = [
    pytest.param(
        "workflows/ci.yml",
        "actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0",
        "actions/checkout@v4",
        "not pinned to a full commit SHA",
        id="action-by-tag",
    ),
    pytest.param(
        "workflows/deploy.yml",
        "Azure/setup-azd@0b7e3a35ab00f2eee7080c845eb39c3f0ebfa553 # v2.4.0",
        "Azure/setup-azd@0b7e3a35ab00f2eee7080c845eb39c3f0ebfa553",
        "needs the release it pins",
        id="pin-without-its-tag",
    ),
    pytest.param(
        "workflows/live.yml",
        "actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020 # v4.4.0",
        "actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020 # v4",
        "needs the release it pins",
        id="pin-with-a-moving-tag",
    ),
    pytest.param(
        "workflows/live.yml",
        "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0",
        # Not a real release: only that the two workflows disagree matters here.
        "actions/setup-python@0000000000000000000000000000000000000000 # v0.0.0",
        "pinned differently across workflows",
        id="action-pinned-twice",
    ),
    pytest.param(
        "workflows/deploy.yml",
        "    environment: production\n",
        "",
        "must declare `environment:`",
        id="deploy-without-environment",
    ),
    pytest.param(
        "workflows/live.yml",
        "azure-functions-core-tools@4.15.1 --unsafe-perm",
        "azure-functions-core-tools@4 --unsafe-perm",
        "not an exact version",
        id="core-tools-major-only",
    ),
    pytest.param(
        "scripts/run-local.sh",
        'prefix "$CORE_TOOLS_DIR" azure-functions-core-tools@4.15.1 \\',
        'prefix "$CORE_TOOLS_DIR" azure-functions-core-tools@4.14.0 \\',
        "several versions",
        id="core-tools-versions-disagree",
    ),
]


@pytest.mark.parametrize(("relative", "old", "new", "expected"), MUTATIONS)
def test_checks_catch_regressions(relative: str, old: str, new: str, expected: str) -> None:
    workflows, scripts = workflow_texts(), script_texts()
    kind, name = relative.split("/", 1)
    files = workflows if kind == "workflows" else scripts
    key = name if kind == "workflows" else relative
    text = files[key]
    assert text.count(old) == 1, f"{relative} no longer contains {old!r} exactly once"
    files[key] = text.replace(old, new)
    assert not all_problems(workflow_texts(), script_texts()), "the files themselves must pass"
    problems = all_problems(workflows, scripts)
    assert any(expected in problem for problem in problems), (
        f"editing {relative} ({old!r} -> {new!r}) went unnoticed; problems: {problems}"
    )


def test_the_workflow_parser_sees_every_job_and_step() -> None:
    """The line-based reading finds what is there (a guard for the checks above)."""
    workflows = workflow_texts()
    assert set(jobs(workflows["deploy.yml"])) == {"deploy"}
    assert set(jobs(workflows["ci.yml"])) == {"test"}
    lines = [line for text in workflows.values() for line in text.splitlines()]
    mentioned = [line for line in lines if re.search(r"^\s*(?:-\s+)?uses:", line)]
    assert mentioned, "no uses: lines found"
    assert all(USES.match(line) for line in mentioned), "a uses: line the parser cannot read"
