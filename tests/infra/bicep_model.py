"""The Bicep under infra/, parsed with pycep, and small queries over it.

No Bicep compiler can run here, so the tests read the parse tree instead. pycep
turns every file into plain JSON: literals keep their Python type (bool, int,
str), identifiers and string literals both become `str`, and expressions become
nested `{"operator": ...}` / `{"function": ...}` dicts. `render()` writes an
expression back as compact text (`identity.properties.clientId`,
`subscription_resource_id(Microsoft.Authorization/roleDefinitions, x)`), which
is what the tests compare against.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
MAIN_BICEP = INFRA_DIR / "main.bicep"

# A parsed Bicep value: JSON-like, so Any is the honest type.
Node = Any

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(node: Node) -> str:
    """A Bicep expression from pycep's tree as compact text, for comparisons and messages."""
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int | float | str):
        return str(node)
    if isinstance(node, list):
        return "[" + ", ".join(render(item) for item in node) + "]"
    if isinstance(node, dict):
        if set(node) == {"operator"}:
            return _render_operator(node["operator"])
        if set(node) == {"function"}:
            function = node["function"]
            arguments = [
                render(v) for v in function.get("parameters", {}).values() if v is not None
            ]
            return f"{function['type']}({', '.join(arguments)})"
        return "{" + ", ".join(f"{unquote(k)}: {render(v)}" for k, v in node.items()) + "}"
    raise TypeError(f"unexpected node {node!r}")


def _render_operator(operator: dict[str, Any]) -> str:
    kind = operator["type"]
    operands = operator.get("operands", {})
    if kind == "property_accessor":
        return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
    if kind == "index_accessor":
        return f"{render(operands['operand_1'])}[{render(operands['operand_2'])}]"
    if kind == "function_accessor":
        return f"{render(operands['operand_1'])}.{operands['func_name']}()"
    if kind == "not":
        return "!" + render(operands["bool_value"])
    return f"{kind}({', '.join(render(v) for v in operands.values())})"


def evaluate(file: BicepFile, node: Node, values: Mapping[str, Any]) -> Node:
    """`node` as one deployment of `file` sees it: a parameter takes its value from `values`
    (else its default), a variable its own value, and `==`, `!`, `empty()`, `?:` and `concat()`
    are worked out. What cannot be worked out (a resource property, say) comes back as written.

    This is the small part of a Bicep compiler that tells the deployment's variants apart
    (`durableBackend`): which modules are deployed and which app settings are set.
    """
    if isinstance(node, str):
        if node in values:
            return values[node]
        parameter = file.parameters.get(node)
        if parameter is not None and "default" in parameter:
            return evaluate(file, parameter["default"], values)
        if node in file.variables:
            return evaluate(file, file.variables[node], values)
        return node
    if not isinstance(node, dict):
        return node
    if set(node) == {"operator"}:
        kind = node["operator"]["type"]
        operands = node["operator"].get("operands", {})
        if kind == "equals":
            left = evaluate(file, operands["operand_1"], values)
            right = evaluate(file, operands["operand_2"], values)
            return left == right
        if kind == "not":
            value = evaluate(file, operands["bool_value"], values)
            return (not value) if isinstance(value, bool) else node
        if kind == "conditional":
            condition = evaluate(file, operands["condition"], values)
            if isinstance(condition, bool):
                chosen = operands["true_value"] if condition else operands["false_value"]
                return evaluate(file, chosen, values)
        return node
    if set(node) == {"function"}:
        function = node["function"]
        arguments = [
            evaluate(file, v, values)
            for v in function.get("parameters", {}).values()
            if v is not None
        ]
        if function["type"] == "concat" and all(isinstance(a, list) for a in arguments):
            return [item for argument in arguments for item in argument]
        if function["type"] == "empty" and len(arguments) == 1:
            return arguments[0] in ("", [], {})
    return node


def unquote(key: str) -> str:
    """Object keys that needed quotes in Bicep ('azd-env-name') keep them in pycep's output."""
    if len(key) >= 2 and key[0] == key[-1] == "'":
        return key[1:-1]
    return key


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, depth first, the node itself included."""
    yield node
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def _unwrap(config: dict[str, Any]) -> tuple[dict[str, Any], Node, bool]:
    """(body, condition, is_loop) of a resource or module value (`if (...) {...}`, `[for ...]`)."""
    if "loop_type" in config:
        return config["config"], config.get("condition"), True
    if set(config) == {"condition", "config"}:
        return config["config"], config["condition"], False
    return config, None, False


@dataclass(frozen=True)
class Resource:
    file: BicepFile
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: dict[str, Any]
    condition: Node
    is_loop: bool

    @property
    def properties(self) -> dict[str, Any]:
        properties = self.body.get("properties", {})
        assert isinstance(properties, dict), f"{self}: properties is not an object"
        return properties

    def __str__(self) -> str:
        return f"{self.file.name}: resource {self.symbol} '{self.type}'"


@dataclass(frozen=True)
class Module:
    file: BicepFile
    symbol: str
    path: Path
    body: dict[str, Any]
    condition: Node

    @property
    def params(self) -> dict[str, Any]:
        params = self.body.get("params", {})
        assert isinstance(params, dict), f"{self}: params is not an object"
        return params

    def __str__(self) -> str:
        return f"{self.file.name}: module {self.symbol} '{self.path.relative_to(INFRA_DIR)}'"


@dataclass(frozen=True)
class BicepFile:
    path: Path
    tree: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.path.relative_to(INFRA_DIR))

    @property
    def target_scope(self) -> str:
        scope = self.tree.get("globals", {}).get("scope", {}).get("value", "resourceGroup")
        return str(scope)

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.tree.get("parameters", {}))

    @property
    def variables(self) -> dict[str, Any]:
        return {name: v["value"] for name, v in self.tree.get("variables", {}).items()}

    @property
    def outputs(self) -> dict[str, Any]:
        return {name: v["value"] for name, v in self.tree.get("outputs", {}).items()}

    def resources(
        self, type_: str | None = None, *, existing: bool | None = None
    ) -> list[Resource]:
        found = []
        for symbol, raw in self.tree.get("resources", {}).items():
            if type_ is not None and raw["type"].lower() != type_.lower():
                continue
            if existing is not None and raw["existing"] != existing:
                continue
            body, condition, is_loop = _unwrap(raw["config"])
            found.append(
                Resource(
                    self,
                    symbol,
                    raw["type"],
                    raw["api_version"],
                    raw["existing"],
                    body,
                    condition,
                    is_loop,
                )
            )
        return found

    def resource(self, symbol: str) -> Resource:
        for candidate in self.resources():
            if candidate.symbol == symbol:
                return candidate
        raise KeyError(f"{self.name}: no resource named {symbol}")

    def only_resource(self, type_: str, *, existing: bool | None = False) -> Resource:
        found = self.resources(type_, existing=existing)
        assert len(found) == 1, (
            f"{self.name}: expected one {type_}, found {[r.symbol for r in found]}"
        )
        return found[0]

    def deployed(self, condition: Node, values: Mapping[str, Any]) -> bool:
        """Whether a resource or module with this `if (...)` is deployed (True when unknown)."""
        if condition is None:
            return True
        return evaluate(self, condition, values) is not False

    def modules(self) -> list[Module]:
        found = []
        for symbol, raw in self.tree.get("modules", {}).items():
            body, condition, _ = _unwrap(raw["config"])
            path = (self.path.parent / raw["detail"]["path"]).resolve()
            found.append(Module(self, symbol, path, body, condition))
        return found

    def module(self, symbol: str) -> Module:
        for candidate in self.modules():
            if candidate.symbol == symbol:
                return candidate
        raise KeyError(f"{self.name}: no module named {symbol}")

    def symbol_type(self, expression: str) -> str | None:
        """The resource type of the symbol an expression starts with (`identity.id` -> its type)."""
        head = expression.split(".", 1)[0]
        for candidate in self.resources():
            if candidate.symbol == head:
                return candidate.type
        return None

    def resolve(self, text: str) -> str:
        """`text` with every `${var}` of a string-literal variable replaced by its value."""

        def substitute(match: re.Match[str]) -> str:
            value = self.variables.get(match.group(1))
            return value if isinstance(value, str) else match.group(0)

        return _INTERPOLATION.sub(substitute, text)


@dataclass(frozen=True)
class Project:
    """All Bicep files under infra/, keyed by path, and the wiring of main.bicep."""

    files: dict[Path, BicepFile]

    @property
    def main(self) -> BicepFile:
        return self.files[MAIN_BICEP]

    def file(self, relative: str) -> BicepFile:
        return self.files[(INFRA_DIR / relative).resolve()]

    def module_file(self, module: Module) -> BicepFile:
        return self.files[module.path]

    def modules_of(self, relative: str) -> list[Module]:
        """Every module statement in main.bicep that deploys infra/<relative>."""
        target = (INFRA_DIR / relative).resolve()
        return [m for m in self.main.modules() if m.path == target]

    def all_resources(self, type_: str, *, existing: bool | None = False) -> list[Resource]:
        return [r for f in self.files.values() for r in f.resources(type_, existing=existing)]


def bicep_paths() -> list[Path]:
    return sorted(p.resolve() for p in INFRA_DIR.rglob("*.bicep"))


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def parse(text: str) -> dict[str, Any]:
    """pycep's tree of one file's text (cached: callers must not modify it)."""
    return cast(dict[str, Any], _parser().parse(text=text))


def load_project(overrides: Mapping[Path, str] | None = None) -> Project:
    """Parse every .bicep file under infra/; `overrides` replaces files' text (mutation tests)."""
    overrides = {p.resolve(): text for p, text in (overrides or {}).items()}
    files = {}
    for path in bicep_paths():
        text = overrides.get(path, path.read_text(encoding="utf-8"))
        files[path] = BicepFile(path, parse(text))
    return Project(files)
