"""The tree reads as the architecture: packages per layer, imports only downwards, small modules.

A layer may import its own package and any layer below it, never one above: reading, reporting,
comparing and pricing then never pull in the measuring code (or torch), and a reader can learn
the code from the bottom up. A module over MAX_MODULE_LINES or a function body over
MAX_FUNCTION_LINES says why in its docstring, with the words in EXCEPTION_MARK.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# bottom to top; a name is a package of bench/ (or workloads), and a module imports only from
# its own row or rows above it in this list
LAYERS = [
    {"bench", "bench.errors", "bench.text"},  # the version, one-line errors, safe text
    {"bench.device"},  # the only layer that talks to hardware
    {"bench.catalog", "bench.results"},  # data: the catalog, the on-disk format
    {"workloads"},  # the standardised work, on a device
    {"bench.measure"},  # timer, runner, suites, ranks, the run session
    {"bench.serve"},  # load against a serving engine over HTTP (measures a server, not a kernel)
    {"bench.cost"},  # analysis over records, never measuring
    {"bench.compare"},
    {"bench.report"},
    {"bench.accept"},  # acceptance verdicts over records, against thresholds and references
    {"bench.cli", "bench.pytest_plugin", "bench.pytest_suite", "bench.__main__"},  # what users call
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
EXCEPTION_MARK = "longer than the rule because"


def _modules() -> list[Path]:
    return sorted([*ROOT.glob("bench/**/*.py"), *ROOT.glob("workloads/*.py")])


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _unit(module: str) -> str:
    """The layer unit of a dotted module name: its package under bench/, or workloads."""
    parts = module.split(".")
    if parts[0] == "workloads":
        return "workloads"
    return ".".join(parts[:2])


def _rank(module: str) -> int:
    unit = _unit(module)
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"{module}: in no layer of tests/test_layout.py; add its package to LAYERS")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of tokenbench's own code in `path`, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "bench":  # `from bench import text` names modules of bench itself
                found += [(node.lineno, f"bench.{a.name}") for a in node.names]
            elif node.module.split(".")[0] in ("bench", "workloads"):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] in ("bench", "workloads")]
    return found


def test_every_module_is_in_a_layer():
    for path in _modules():
        _rank(_name(path))


def test_imports_only_go_downwards():
    upward = []
    for path in _modules():
        here = _name(path)
        for line, target in _imports(path):
            if target == "bench.__version__":
                continue
            if _rank(target) > _rank(here):
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target} (a layer above {_unit(here)})")
    assert not upward, "\n".join(upward)


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    """The check above can fail: a device module importing the report layer is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from bench.report.model import build\n")
    (line, target) = _imports(bad)[0]
    assert (line, target) == (2, "bench.report.model") and _rank(target) > _rank("bench.device.nvml")


def _docstring(node: ast.AST) -> str:
    return (ast.get_docstring(node) or "").lower()  # type: ignore[arg-type]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_are_small(path):
    tree = ast.parse(path.read_text())
    n_lines = len(path.read_text().splitlines())
    if n_lines > MAX_MODULE_LINES:
        assert EXCEPTION_MARK in _docstring(tree), f"{n_lines} lines: split it along its seams, or say why"
    long = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) else node.body  # the signature and docstring aside
            size = node.end_lineno - body[0].lineno + 1 if body else 0
            if size > MAX_FUNCTION_LINES and EXCEPTION_MARK not in _docstring(node):
                long.append(f"{node.name} (line {node.lineno}): a body of {size} lines")
    assert not long, "; ".join(long)
