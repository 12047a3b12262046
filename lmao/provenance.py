"""Which code made each result.

Jobs import `lmao` from this checkout (`export_package_path`), and Snakemake reruns a job
when its rule's script changes but cannot see the package modules the script imports; so
each finished job's output is recorded with a digest of those modules, and at start-up the
workflow names, per rule, the outputs that other code made.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from pathlib import Path

from .fileio import write_json


def export_package_path(basedir: str | Path) -> None:
    """Let job scripts import `lmao` from this checkout, in conda envs and on cluster nodes.

    Jobs inherit the environment, so prepending the checkout to PYTHONPATH is enough.
    """
    paths = [str(basedir), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))




def _module_file(parts: list[str], root: Path) -> Path | None:
    """The file of dotted module `parts` under `root` (a module or a package's __init__)."""
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(script: Path, package: Path) -> list[Path]:
    """The modules of `package` (subpackages included) that `script` imports, directly or
    through each other. A subpackage's `__init__` counts, the top package's does not."""
    root = package.parent
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = path.is_relative_to(package)
        here = list(path.relative_to(root).parent.parts) if inside else []
        for node in ast.walk(tree):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    if not inside:
                        continue
                    base = here[: len(here) - (node.level - 1)]
                else:
                    base = []
                module = base + (node.module.split(".") if node.module else [])
                if module[:1] != [package.name]:
                    continue
                targets = [module] + [module + [alias.name] for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".") for a in node.names
                           if a.name.split(".")[0] == package.name]
            for parts in targets:
                for depth in range(2, len(parts) + 1):  # parent packages run first
                    module_file = _module_file(parts[:depth], root)
                    if module_file is not None and module_file not in seen:
                        seen.add(module_file)
                        todo.append(module_file)
    return sorted(seen)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def rule_code(scripts: dict[str, Path], package: Path) -> dict[str, dict[str, str]]:
    """For each rule, the digest of every package module its script runs."""
    return {rule: {str(m.relative_to(package.parent)): file_digest(m)
                   for m in imported_modules(script, package)}
            for rule, script in scripts.items()}


def code_key(modules: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(modules, sort_keys=True).encode()).hexdigest()[:16]


def read_code_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"code": {}, "outputs": {}}
    return record if isinstance(record, dict) and "outputs" in record else {"code": {},
                                                                             "outputs": {}}


def record_code(path: Path, jobs: list[tuple[str, str]], code: dict[str, dict[str, str]]
                ) -> None:
    """Record that each (rule, output) in `jobs` was just made by the current code."""
    record = read_code_record(path)
    for rule, output in jobs:
        if rule in code:
            key = code_key(code[rule])
            record["code"][key] = code[rule]
            record["outputs"][output] = [rule, key]
    used = {key for _rule, key in record["outputs"].values()}
    record["code"] = {key: modules for key, modules in record["code"].items() if key in used}

    write_json(path, record)


def code_changes(record: dict, code: dict[str, dict[str, str]]) -> dict[str, dict]:
    """Per rule: how many recorded outputs other code made, and which modules differ."""
    changes: dict[str, dict] = {}
    for output, (rule, key) in sorted(record["outputs"].items()):
        if rule not in code or key == code_key(code[rule]):
            continue
        then = record["code"].get(key, {})
        now = code[rule]
        modules = sorted(m for m in set(then) | set(now) if then.get(m) != now.get(m))
        entry = changes.setdefault(rule, {"outputs": [], "modules": set()})
        entry["outputs"].append(output)
        entry["modules"].update(modules)
    return changes


def describe_code_changes(changes: dict[str, dict]) -> str:
    lines = ["The lmao package's code changed since these results were made (Snakemake does "
             "not rerun jobs for that by itself):"]
    for rule, entry in sorted(changes.items()):
        lines.append(f"  rule {rule}: {len(entry['outputs'])} output(s), e.g. "
                     f"{entry['outputs'][0]}; changed: {', '.join(sorted(entry['modules']))}")
    lines.append("If a change alters results, rerun them: snakemake --forcerun "
                 + " ".join(sorted(changes)) + " (plus your usual options).")
    return "\n".join(lines)


def workflow_code(rules) -> dict[str, dict[str, str]]:
    """`rule_code` for the rules of a running Snakefile (those with a `script:`)."""
    package = Path(__file__).resolve().parent
    scripts = {rule.name: (Path(rule.basedir) / rule.script).resolve()
               for rule in rules if rule.script}
    return rule_code(scripts, package)


def finished_jobs(dag) -> list[tuple[str, str]]:
    """(rule, first output) of each job this invocation ran (or touched) to the end."""
    return [(job.rule.name, str(job.output[0])) for job in dag.needrun_jobs(
        exclude_finished=False) if dag.finished(job) and job.output]
