"""The local host's durable state on disk: written whole, atomically, after every change."""

import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from local_durable_host.model import EntityView
from local_durable_host.work import ActivityWork, InstanceRecord, Mailbox

# Raised when what is saved changes shape: an old file is then refused, not half-read.
FORMAT_VERSION = 1


@dataclass
class DurableState:
    """Everything the extension would keep in its task hub."""

    instances: dict[str, InstanceRecord]
    mailbox: Mailbox
    entities: dict[tuple[str, str], EntityView]
    # Activities that were running: they are queued again when the state is loaded.
    in_flight: list[ActivityWork]
    version: int = FORMAT_VERSION


class StateFile:
    """One file, replaced whole on every save: a killed host finds the last complete state.

    The rename is atomic, so a killed process (kill -9) leaves the last whole state; there is
    no fsync, so a power cut may lose the last changes: a development tool's trade for speed.
    Pickle, because the state is the host's own objects and the file is the host's own,
    in the project's `.local-host/` folder: it is never read from anywhere else. Whole-file
    writes cost time in proportion to the state; that is the price of a development tool
    this small (docs/local-development.md has the figures).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> DurableState | None:
        # Leftovers of saves cut short by a kill: never read, only in the way.
        for leftover in self.path.parent.glob(".state-*"):
            leftover.unlink(missing_ok=True)
        if not self.path.exists():
            return None
        with self.path.open("rb") as stored:
            try:
                state = pickle.load(stored)  # noqa: S301 - the host's own file, see above
            except Exception:
                state = None
        if not isinstance(state, DurableState) or state.version != FORMAT_VERSION:
            raise ValueError(
                f"{self.path} was saved by another version of the local durable host: delete "
                f"{self.path.parent}/ to start empty (the job store keeps the jobs: the "
                "stalled-job repair starts each again once it is 10 minutes overdue)"
            )
        return state

    def save(self, state: DurableState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
