"""Cold start stays cheap: importing and indexing the app loads none of the heavy libraries.

(The time itself is measured by benchmarks/cold_start.py, never asserted here.)
"""

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Needed only once a function runs: models, stores, the HTTP client, crypto, identity.
HEAVY = (
    "pydantic",
    "pydantic_settings",
    "httpx",
    "cryptography",
    "azure.data",
    "azure.cosmos",
    "azure.identity",
    "azure.keyvault",
    "azure.monitor",
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "swagger_ui",
)


def test_importing_and_indexing_the_app_loads_no_heavy_library() -> None:
    code = (
        "import json, sys, function_app\n"
        "function_app.app.get_functions()\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, check=True, text=True
        ).stdout
    )
    heavy = sorted(
        {name for name in loaded for root in HEAVY if name == root or name.startswith(root + ".")}
    )
    assert heavy == []
