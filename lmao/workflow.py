"""Glue the Snakefile needs at start-up, kept out of the rule files."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from lmao.fileio import InputError, write_json


def export_package_path(basedir: str | Path) -> None:
    """Let job scripts import `lmao` from this checkout, in conda envs and on cluster nodes.

    Jobs inherit the environment, so prepending the checkout to PYTHONPATH is enough.
    """
    paths = [str(basedir), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


class RestoreError(RuntimeError):
    """Restored results that DVC does not vouch for under this config and code."""


def dvc_changes(stage: str) -> dict:
    """What `dvc status` says differs between the workspace and `dvc.lock` for `stage`
    (config, code or results); empty when the restored results are what the lock records."""
    try:
        result = subprocess.run(["dvc", "status", "--json", stage], capture_output=True,
                                text=True)
    except FileNotFoundError:
        raise RestoreError("dvc is not installed (pip install -e '.[dvc]')") from None
    if result.returncode != 0:
        raise RestoreError(f"dvc status {stage}: {result.stderr.strip() or result.stdout}")
    return json.loads(result.stdout.strip() or "{}")


def restore(config_path: str | Path, check_dvc: bool = True) -> None:
    """Make Snakemake trust results that `dvc pull` / `dvc checkout` put back.

    DVC restores files with new timestamps in no set order, and a fresh clone has no
    Snakemake records (`.snakemake/`), so without this Snakemake would rerun jobs by
    timestamp and could not tell a later config edit from the settings the results were
    made with. First `dvc status` must say that the config, the code and the results are
    those `dvc.lock` records (else the results are not this config's: `dvc repro` is the
    way); then `snakemake --touch --forceall` sets timestamps in DAG order and records every
    job's params, as if it had just run.
    """
    from .experiment import load_config

    name = load_config(config_path)["name"]
    stage = f"workflow@{name}"
    if check_dvc:
        changes = dvc_changes(stage)
        if changes:
            raise RestoreError(
                f"{stage}: the config, code or results differ from what dvc.lock records, so "
                f"these results are not known to follow from {config_path}; run `dvc repro "
                f"{stage}` instead. dvc status: {json.dumps(changes)}")
    command = [sys.executable, "-m", "snakemake", "--touch", "--forceall", "--cores", "1",
               "--quiet", "all", "--configfile", str(config_path)]
    if subprocess.run(command).returncode != 0:
        raise RestoreError(f"{' '.join(command)} failed (see above)")


# ------------------------------------------------ changes of the package's own code
# Snakemake reruns a job when its rule's script file changes, but it cannot see the `lmao`
# modules the script imports. Rerunning every job whenever any module changes would redo
# days of pre-training for a refactoring, so instead each finished job's output is recorded
# with a digest of the modules its rule runs (`results/<name>/code.json`, beside the
# results, so DVC carries it), and at start-up the workflow warns, per rule, about outputs
# made by other code, naming the modules that changed and the command that reruns them.

CODE_RECORD = "code.json"


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


# Source data is tracked by content: its digest is part of the params of the job that
# reads it, and the file itself is an ancient() input. A copy, checkout or `touch` of the
# same bytes then reruns nothing (Snakemake alone would rerun everything downstream of an
# input newer than its outputs, hours of pre-training for a re-provisioned data folder),
# and any edit of the bytes reruns exactly the jobs that read them, even one that keeps the
# old timestamp. Digests are cached by (size, mtime, ctime, inode): a file is hashed once,
# and again only after something touched it.
SOURCE_DIGESTS = Path(".snakemake/lmao/source-digests.json")
LARGE_SOURCE = 256 * 2**20  # bytes; hashing a file this big is announced on stderr


def special_file(status: os.stat_result) -> str | None:
    """What a path is when it is neither a regular file nor a folder ("a FIFO"), else None:
    reading a FIFO or a character device such as /dev/zero never ends."""
    mode = status.st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def _regular(path: Path, where: str = "") -> os.stat_result:
    """`path`'s stat, refused (InputError) unless it is a regular file or folder: a digest
    must end, and a source folder's digest must cover every file in it."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise InputError(path, None, f"no such file (a broken link?){where}") from None
    kind = special_file(status)
    if kind is not None:
        raise InputError(path, None, f"not a regular file or folder ({kind}){where}")
    return status


def stat_key(path: Path) -> list[int]:
    """What changes when a file's bytes may have: size, mtime, ctime (an edit that puts the
    old mtime back still moves it) and inode (a file replaced by another)."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def _sha256(path: Path) -> str:
    size = _regular(path).st_size  # never open a FIFO: the digest would wait forever
    if size >= LARGE_SOURCE:
        print(f"lmao: hashing {path} ({size / 2**30:.1f} GiB), once per change",
              file=sys.stderr)
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class SourceDigests:
    """SHA-256 of source files and folders by content, cached on disk by stat."""

    def __init__(self, cache_path: Path = SOURCE_DIGESTS):
        self.cache_path = cache_path
        try:
            self.cache: dict[str, dict] = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            self.cache = {}
        self.changed = False

    def _cached(self, path: Path, stats: object, compute) -> str:  # noqa: ANN001
        key = str(path.resolve())
        cached = self.cache.get(key)
        if cached is not None and cached["stat"] == stats:
            return cached["sha256"]
        digest = compute()
        self.cache[key] = {"stat": stats, "sha256": digest}
        self.changed = True
        return digest

    def file(self, path: Path) -> str:
        return self._cached(path, stat_key(path), lambda: _sha256(path))

    def digest(self, path: str | Path) -> str:
        """A file's SHA-256, or for a folder the SHA-256 of its files' names and digests
        (cached as one entry, keyed by all its files' stats: an unpacked aclImdb folder
        has 100,000 files)."""
        path = Path(path)
        if not stat.S_ISDIR(_regular(path).st_mode):
            return self.file(path)
        inside = f" inside the source folder {path}"
        files = sorted(p for p in path.rglob("*")
                       if not stat.S_ISDIR(_regular(p, inside).st_mode))
        names = [file.relative_to(path).as_posix() for file in files]
        stats = hashlib.sha256(json.dumps([[name, *stat_key(file)] for name, file
                                           in zip(names, files, strict=True)]).encode())

        def listing() -> str:
            digest = hashlib.sha256()
            for name, file in zip(names, files, strict=True):
                digest.update(f"{name}\0{_sha256(file)}\n".encode())
            return digest.hexdigest()

        return self._cached(path, stats.hexdigest(), listing)

    def of(self, paths: dict[str, str]) -> dict[str, str]:
        """{config key: digest} for {config key: path}; the cache is saved if it grew."""
        digests = {key: self.digest(path) for key, path in paths.items()}
        if self.changed:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.cache_path, self.cache)
            self.changed = False
        return digests


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
    from .fileio import write_json

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


def workflow_code(rules) -> dict[str, dict[str, str]]:  # noqa: ANN001  (Snakemake's rules)
    """`rule_code` for the rules of a running Snakefile (those with a `script:`)."""
    package = Path(__file__).resolve().parent
    scripts = {rule.name: (Path(rule.basedir) / rule.script).resolve()
               for rule in rules if rule.script}
    return rule_code(scripts, package)


def finished_jobs(dag) -> list[tuple[str, str]]:  # noqa: ANN001  (Snakemake's DAG)
    """(rule, first output) of each job this invocation ran (or touched) to the end."""
    return [(job.rule.name, str(job.output[0])) for job in dag.needrun_jobs(
        exclude_finished=False) if dag.finished(job) and job.output]
