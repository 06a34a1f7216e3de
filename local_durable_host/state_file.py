"""The local host's durable state on disk: written whole, atomically, after every change."""

import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from local_durable_host.model import EntityView
from local_durable_host.work import ActivityWork, InstanceRecord, Mailbox


@dataclass
class DurableState:
    """Everything the extension would keep in its task hub."""

    instances: dict[str, InstanceRecord]
    mailbox: Mailbox
    entities: dict[tuple[str, str], EntityView]
    # Activities that were running: they are queued again when the state is loaded.
    in_flight: list[ActivityWork]


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
        if not self.path.exists():
            return None
        with self.path.open("rb") as stored:
            state = pickle.load(stored)  # noqa: S301 - the host's own file, see above
        if not isinstance(state, DurableState):
            raise ValueError(f"{self.path} does not hold a local durable host's state")
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
