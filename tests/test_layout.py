"""The layout's import rules (docs/ARCHITECTURE.md): which of our folders may import which.

Read from the source with `ast`, so an import inside a function counts as much as one at the top.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.layout import APP_PACKAGES

REPO = Path(__file__).resolve().parents[1]

# Each package may import itself and the packages listed: layers, lowest first.
MAY_IMPORT: dict[str, set[str]] = {
    "scheduling": set(),
    "storage": {"scheduling"},
    "delivery": {"scheduling", "storage"},
    "dashboard": {"scheduling"},
    "api": {"scheduling", "storage", "delivery", "dashboard"},
    "blueprints": {"scheduling", "storage", "delivery", "dashboard", "api"},
}
OURS = {*APP_PACKAGES, "function_app", "local_durable_host", "tests", "benchmarks", "clients"}
# The domain decides; it never reaches a network, a store or a web framework itself.
NOT_IN_THE_DOMAIN = (
    "azure", "httpx", "httpcore", "requests", "urllib3", "aiohttp", "jinja2",
    "starlette", "fastapi", "flask", "werkzeug",
)  # fmt: skip
# Trigger adapters (the Functions and Durable SDKs) are the route table's business only.
TRIGGER_SDKS = ("azure.functions", "azure.durable_functions")


def modules_of(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def imports_in(source: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{source}: a relative import hides which layer it reaches"
            assert node.module is not None
            yield node.module


def is_under(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(f"{root}.") for root in roots)


def test_the_rules_name_every_package_and_every_package_has_modules() -> None:
    assert set(MAY_IMPORT) == set(APP_PACKAGES)
    for package in APP_PACKAGES:
        assert modules_of(package), f"{package}/ has no modules: has it moved?"


@pytest.mark.parametrize("package", APP_PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    allowed = {package, *MAY_IMPORT[package]}
    crossings = sorted(
        f"{source.relative_to(REPO)} imports {module}"
        for source in modules_of(package)
        for module in imports_in(source)
        if module.split(".")[0] in OURS and module.split(".")[0] not in allowed
    )
    assert crossings == []


def test_the_domain_imports_no_sdk_client_or_web_framework() -> None:
    reached = sorted(
        f"{source.relative_to(REPO)} imports {module}"
        for source in modules_of("scheduling")
        for module in imports_in(source)
        if is_under(module, NOT_IN_THE_DOMAIN)
    )
    assert reached == []


def test_only_the_route_table_imports_the_trigger_sdks() -> None:
    below_the_routes = [p for p in APP_PACKAGES if p != "blueprints"]
    reached = sorted(
        f"{source.relative_to(REPO)} imports {module}"
        for package in below_the_routes
        for source in modules_of(package)
        for module in imports_in(source)
        if is_under(module, TRIGGER_SDKS)
    )
    assert reached == []


def test_the_function_app_imports_blueprints_and_the_zone_data_only() -> None:
    ours = {
        module for module in imports_in(REPO / "function_app.py") if module.split(".")[0] in OURS
    }
    assert ours == {"blueprints", "scheduling.zone_data"}


@pytest.mark.parametrize("package", APP_PACKAGES)
def test_every_module_opens_with_its_purpose(package: str) -> None:
    silent = [
        str(source.relative_to(REPO))
        for source in modules_of(package)
        if not (ast.get_docstring(ast.parse(source.read_text())) or "").strip()
    ]
    assert silent == []


LONG_MODULE_LINES = 400


def test_a_long_module_says_at_its_top_why_it_stays_whole() -> None:
    # One module, one job: past ~400 lines a module is split, or its docstring says "Whole at".
    folders = [*APP_PACKAGES, "local_durable_host", "benchmarks", "clients/python/src"]
    unexplained = [
        f"{source.relative_to(REPO)}: {lines} lines"
        for folder in folders
        for source in modules_of(folder)
        if (lines := len(source.read_text().splitlines())) > LONG_MODULE_LINES
        and "Whole at" not in (ast.get_docstring(ast.parse(source.read_text())) or "")
    ]
    assert unexplained == []


def local_host_imports() -> dict[str, set[str]]:
    """Module -> the local_durable_host modules it imports (under TYPE_CHECKING too)."""
    package = "local_durable_host"
    graph: dict[str, set[str]] = {}
    for source in modules_of(package):
        reached = set()
        for module in imports_in(source):
            if module == package:  # `from local_durable_host import history`
                tree = ast.parse(source.read_text())
                reached |= {
                    f"{package}.{alias.name}"
                    for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module == package
                    for alias in node.names
                }
            elif module.startswith(f"{package}."):
                reached.add(module)
        graph[f"{package}.{source.stem}"] = reached
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One import circle (its modules in order, the first again at the end), or []."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        for reached in sorted(graph.get(module, ())):
            if found := visit(reached, [*path, module]):
                return found
        done.add(module)
        return []

    return next((found for module in sorted(graph) if (found := visit(module, []))), [])


def test_the_local_host_has_no_import_circle() -> None:
    graph = local_host_imports()
    assert "local_durable_host.engine" in graph["local_durable_host.local_host"]
    assert cycle_in(graph) == []


def test_the_circle_check_finds_a_circle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) == []


def test_the_rule_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    # The checks above find nothing today; this shows they would find a crossing.
    source = tmp_path / "late.py"
    source.write_text('"""x"""\n\ndef f():\n    from storage.job_store import JobStore\n')
    assert list(imports_in(source)) == ["storage.job_store"]
