"""The package's shape: no import cycles, and the modules the workflow needs to build its
DAG or check a config load no spaCy (a dry run should not pay for the models)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from .conftest import REPO


def module_imports(root: Path = REPO) -> dict[str, set[str]]:
    """Each module of the package → the package modules it imports (those inside functions
    too: a cycle through a lazy import is still a tangle)."""
    return {".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"):
            _direct(path, root) for path in (root / "lmao").rglob("*.py")}


def _direct(path: Path, root: Path) -> set[str]:
    here = list(path.relative_to(root).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - (node.level - 1)] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            if module[:1] == ["lmao"]:
                for alias in node.names:
                    candidate = [*module, alias.name]
                    is_module = (root.joinpath(*candidate).with_suffix(".py").exists()
                                 or root.joinpath(*candidate, "__init__.py").exists())
                    found.add(".".join(candidate if is_module else module))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "lmao")
    return found - {"lmao"}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    # a subpackage's own modules may import each other through its __init__; a cycle
    # between two different modules may not
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target == module or target == module.rpartition(".")[0]:
                continue
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target in graph and not state.get(target):
                visit(target, [*stack, target])
        state[module] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [module])
    return cycles


def test_the_package_has_no_import_cycles():
    cycles = import_cycles(module_imports())
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_checking_a_config_and_building_the_dag_load_no_spacy():
    code = ("import sys, lmao.config, lmao.grid, lmao.jobs, lmao.layout, lmao.digests, "
            "lmao.provenance, lmao.settings, lmao.halving, lmao.task_words, lmao.calibration, "
            "lmao.cost, "
            "lmao.cli; "
            "print(sorted(m for m in ('spacy', 'thinc', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
