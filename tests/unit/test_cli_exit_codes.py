"""The exit codes docs/cli.md and `scheduler --help` promise are the ones the command has."""

import re
from pathlib import Path

from click.testing import CliRunner
from scheduler_client.cli import main
from scheduler_client.errors import ExitCode

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_documented_exit_codes_are_the_commands() -> None:
    text = DOC.read_text()
    table = text[text.index("| exit code | meaning |") :].split("\n\n", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def test_the_help_lists_each_exit_code() -> None:
    shown = CliRunner().invoke(main, ["--help"]).output
    listed = {int(code) for code in re.findall(r"^\s+(\d)\s{2}\w", shown, re.MULTILINE)}
    assert listed == {int(code) for code in ExitCode}
