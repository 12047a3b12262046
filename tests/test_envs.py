"""Every rule runs in a conda env that lists every third-party package its code imports.

Follows each rule's `script:` and, transitively, the `lmao` modules it imports, collecting
top-level imports with `ast`; no conda is needed to check this."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# import name → conda package name, where they differ
CONDA_NAME = {"yaml": "pyyaml"}
# imported by the package but provided by another listed package
PROVIDED_BY = {"srsly": "spacy", "catalogue": "spacy", "confection": "spacy", "cupyx": "cupy"}
# imported only on a GPU (inside the GPU code paths): needed in the envs of the rules the
# SLURM profile sends to a GPU partition, optional elsewhere
GPU_ONLY = {"cupy", "cupyx"}
GPU_RULES = {"pretrain"}


def rules() -> list[tuple[str, str | None, str | None]]:
    """(rule name, conda env path, script path) for every rule in rules/*.smk."""
    found = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"^rule ", text, flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            conda = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            found.append((name, conda and conda.group(1), script and script.group(1)))
    return found


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: a module of this package
                names.add(f"lmao.{node.module}" if node.module else "lmao")
            elif node.module:
                names.add(node.module if node.module.startswith("lmao") else
                          node.module.split(".")[0])
    return names


def third_party_imports(script: Path) -> set[str]:
    """Top-level names of the non-`lmao`, non-stdlib modules the script and the package
    modules it runs (as `lmao.provenance.imported_modules` follows them) import."""
    from lmao.provenance import imported_modules

    third_party: set[str] = set()
    for path in [script, *imported_modules(script, REPO / "lmao")]:
        for name in imports(path):
            if not name.startswith("lmao") and name not in sys.stdlib_module_names \
                    and name != "__future__":
                third_party.add(name)
    return third_party


def env_packages(env: Path) -> set[str]:
    spec = yaml.safe_load(env.read_text())
    names = set()
    for dep in spec["dependencies"]:
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for entry in entries:
            names.add(re.split(r"[<>=!\s]", entry, maxsplit=1)[0].lower())
    return names


RULES = [r for r in rules() if r[0] != "all"]


def test_rules_were_found():
    assert {"tokenize_corpus", "vectors", "pretrain", "finetune", "report"} <= {
        name for name, _, _ in RULES}


@pytest.mark.parametrize(("rule", "env", "script"), RULES, ids=[r[0] for r in RULES])
def test_rule_env_lists_what_its_code_imports(rule, env, script):
    assert env, f"rule {rule} has no conda env"
    assert script, f"rule {rule} has no script"
    env_path = (REPO / "rules" / env).resolve()
    listed = env_packages(env_path)
    code = (REPO / "rules" / script).resolve()
    needed = {CONDA_NAME.get(n, n) for n in third_party_imports(code)}
    needed = {PROVIDED_BY.get(n, n) for n in needed}
    if rule not in GPU_RULES:
        needed -= GPU_ONLY
    missing = needed - listed
    assert not missing, f"{env_path.name} lacks {sorted(missing)} for rule {rule}"


def test_env_versions_match_pyproject():
    pyproject = (REPO / "pyproject.toml").read_text()
    for env in (REPO / "envs").glob("*.yaml"):
        for dep in yaml.safe_load(env.read_text())["dependencies"]:
            if not isinstance(dep, str) or dep.startswith("python"):
                continue
            name = re.split(r"[<>=!\s]", dep, maxsplit=1)[0]
            pinned = re.search(rf'"{re.escape(name)}([<>=!][^"]*)"', pyproject)
            if pinned and name != "cupy":
                assert dep == f"{name}{pinned.group(1)}", f"{env.name}: {dep} vs pyproject"
