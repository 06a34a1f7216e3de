"""How `pytest -n N --dist loadfile` (pytest-xdist; scripts/test.sh runs the suite so) shares
the suite among its workers: file by file, as loadfile does, except the live modules that wait
a minute or more of real time for the jobs they schedule. Those go to one worker together, as
its first unit of work: they schedule their jobs together (tests/live/conftest.py's
`jobs_due_together`), and while that worker waits for them, the other worker runs the rest.
"""

from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

# Their tests wait for jobs a minute or more out (past the app's MIN_LEAD_SECONDS of 60).
WAITING_MODULES = (
    "tests.live.test_live_api",
    "tests.live.test_live_bulk",
    "tests.live.test_live_flow_control",
)
_WAITING_FILES = frozenset(str(PurePosixPath(*name.split("."))) + ".py" for name in WAITING_MODULES)
_WAITING_SCOPE = "the live modules that wait for jobs a minute out"


class WaitingModulesFirst(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """loadfile's scheduling, with the waiting modules one unit of work, handed out first."""

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        # Work is keyed by node id, and pytest 9 gives the items schemathesis makes of one test
        # (one per API operation, tests/test_api_contract.py) one node id: number the repeats,
        # or only one of them would run.
        seen: Counter[str] = Counter()
        distinct = []
        for nodeid in collection:
            seen[nodeid] += 1
            distinct.append(nodeid if seen[nodeid] == 1 else f"{nodeid}#{seen[nodeid]}")
        super().add_node_collection(node, distinct)

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return _WAITING_SCOPE if path in _WAITING_FILES else path

    def _assign_work_unit(self, node: WorkerController) -> None:
        if _WAITING_SCOPE in self.workqueue:
            self.workqueue.move_to_end(_WAITING_SCOPE, last=False)
        super()._assign_work_unit(node)


class _Scheduler:
    @pytest.hookimpl
    def pytest_xdist_make_scheduler(
        self, config: pytest.Config, log: Producer
    ) -> LoadScopeScheduling | None:
        if config.getvalue("dist") == "loadfile":
            return WaitingModulesFirst(config, log)
        return None


def pytest_configure(config: pytest.Config) -> None:
    # The hook exists only where pytest-xdist is loaded (not under `-p no:xdist`).
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_Scheduler(), "worker-scopes-scheduler")
