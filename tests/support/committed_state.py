"""The state a killed local host leaves behind: its state file's last commit."""

import sqlite3
from contextlib import closing
from pathlib import Path


def committed_copy(state_path: Path, copy_path: Path) -> Path:
    """What a kill -9 would leave of the state now: its last commit (SQLite's online backup
    reads only committed transactions), in a file of its own."""
    copy_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(state_path)) as source,
        closing(sqlite3.connect(copy_path)) as copy,
    ):
        source.backup(copy)
    return copy_path
