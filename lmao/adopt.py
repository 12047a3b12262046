"""Reuse another config's finished results where this config's jobs are the same ones.

Two grids often share their expensive front: the same corpus, vector table and
pre-training run under two configs (a low-data variant of a study, a different classifier
on the same checkpoints). `lmao adopt --from SOURCE --config TARGET` copies the outputs of
every job whose settings (its `params:`) and inputs are identical under both configs and
that TARGET has not made yet, then has Snakemake record them as TARGET's jobs. A later edit
of TARGET then reruns them exactly as if TARGET had made them. A plain `cp` leaves
Snakemake no record of the settings the copies were made with ("missing provenance"), so
an edit of those settings would not rerun them: the copies would look right and be wrong.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .experiment import Experiment, load_config
from .workflow import CODE_RECORD, RestoreError, read_code_record


@dataclass(frozen=True)
class Job:
    """One Snakemake job, as far as adopting it goes: its output paths and log (relative to
    the results and logs folders), its params, and the first outputs of the jobs it reads."""

    rule: str
    outputs: tuple[str, ...]
    log: str
    params: Any
    reads: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()  # written beside the outputs, copied with them if there


def workflow_jobs(experiment: Experiment) -> dict[str, Job]:
    """The jobs of the corpus → vectors → pre-training → tasks → fine-tuning chain, keyed by
    first output. Mirrors the input functions of rules/common.smk (a test checks the two
    against Snakemake's own plan); jobs that read a parser's parse are left out, so they
    are never adopted."""
    config = experiment.config
    jobs: dict[str, Job] = {}
    for corpus in config["corpora"]:
        jobs[f"corpora/{corpus}"] = Job("tokenize_corpus", (f"corpora/{corpus}",),
                                        f"tokenize/{corpus}.log", experiment.corpus_job(corpus))
    for table, spec in config["vectors"].items():
        reads = (f"corpora/{spec['train']['corpus']}",) if "train" in spec else ()
        jobs[f"vectors/{table}"] = Job("vectors", (f"vectors/{table}",), f"vectors/{table}.log",
                                       experiment.vectors_job(table), reads)
    for run, spec in config["pretrain"].items():
        if "parser" in spec:
            continue
        tables = {spec["vectors"], experiment.input_vectors(run)} - {None}
        previous = None
        for words in experiment.checkpoints(run):
            stem = f"pretrain/{run}/words-{words}"
            reads = [f"corpora/{spec['corpus']}", *(f"vectors/{t}" for t in sorted(tables))]
            if previous is not None:
                reads.append(f"pretrain/{run}/words-{previous}.bin")
            jobs[f"{stem}.bin"] = Job(
                "pretrain", (f"{stem}.bin", f"{stem}.state"), f"{stem}.log",
                experiment.pretrain_job(run, words), tuple(reads), (f"{stem}.benchmark.tsv",))
            previous = words
    tasks = experiment.tasks()
    for task, spec in tasks.items():
        reads = (f"tasks/{spec['subset_of']}",) if "subset_of" in spec else ()
        jobs[f"tasks/{task}"] = Job("build_task", (f"tasks/{task}",), f"tasks/{task}.log",
                                    experiment.task_job(task), reads)
    multitask = experiment.multitask()
    for task in experiment.trained_tasks():
        for init in experiment.inits_for(task):
            reads = [f"tasks/{task}"]
            if init.run in multitask:
                aux = multitask[init.run]
                reads += [f"corpora/{aux['corpus']}", f"vectors/{aux['vectors']}"]
            elif init.run in config["pretrain"]:
                reads.append(f"pretrain/{init.run}/words-{init.words}.bin")
            table = experiment.input_vectors(init.run)
            if table is not None:
                reads.append(f"vectors/{table}")
            for sample in range(experiment.n_samples()):
                for seed in config["finetune"]["seeds"]:
                    name = f"{task}/{init.run}/words-{init.words}/sample-{sample}/seed-{seed}"
                    jobs[f"finetune/{name}.jsonl"] = Job(
                        "finetune", (f"finetune/{name}.jsonl",), f"finetune/{name}.log",
                        experiment.finetune_job(task, init.run, init.words, sample, seed),
                        tuple(dict.fromkeys(reads)))
    return jobs


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files, or two folders file by file, hold the same bytes."""
    if a.is_dir() and b.is_dir():
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
            filecmp.cmp(a / f, b / f, shallow=False) for f in files)
    return a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)


def adoptable(source: Experiment, target: Experiment, source_results: Path,
              target_results: Path) -> tuple[list[str], list[str]]:
    """(first outputs to adopt, in dependency order; the target's own results they read).

    A job is adopted when it is the same job under both configs (rule, outputs, params and
    the jobs it reads), the source has made it and the target has not, and everything it
    reads is adopted with it or is the target's already, from the same job and with the
    same bytes as the source's (a table trained twice on many threads may differ)."""
    theirs, ours = workflow_jobs(source), workflow_jobs(target)
    same = {key for key, job in ours.items() if theirs.get(key) == job}
    kept: set[str] = set()
    chosen: dict[str, bool] = {}

    def keeps(key: str) -> bool:
        if key in same and (target_results / key).exists() and _same_bytes(
                source_results / key, target_results / key):
            kept.add(key)
            return True
        return False

    def ok(key: str) -> bool:
        if key not in chosen:
            job = ours.get(key)
            chosen[key] = (
                job is not None and key in same
                and all((source_results / path).exists() for path in job.outputs)
                and not any((target_results / path).exists() for path in job.outputs)
                and all(ok(read) or keeps(read) for read in job.reads))
        return chosen[key]

    return [key for key in ours if ok(key)], sorted(kept)


def _snakemake(snakefile: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile),
               "--configfile", str(config), "--cores", "1", *args]
    return subprocess.run(command, capture_output=True, text=True)


def check_up_to_date(snakefile: Path, config: Path, results: list[str]) -> None:
    """Snakemake, asked to make `results` under `config`, must find nothing to do: results
    that their own config would rerun are not adopted."""
    if not results:
        return
    plan = _snakemake(snakefile, config, "--dry-run", *results)
    if plan.returncode != 0 or "Nothing to be done" not in plan.stdout + plan.stderr:
        raise RestoreError(f"{config}: Snakemake would rerun some of the results to adopt, so "
                           "they do not follow from that config; bring it up to date first. "
                           f"snakemake --dry-run said:\n{(plan.stdout + plan.stderr)[-3000:]}")


def _copy(source: Path, target: Path) -> None:
    """Copy a file or folder with its timestamps, whole or not at all."""
    partial = target.with_name(f".{target.name}.adopt.tmp")
    if partial.is_dir():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, partial, copy_function=shutil.copy2)
        shutil.copystat(source, partial)
    else:
        shutil.copy2(source, partial)
    os.replace(partial, target)


def adopt(source_config: Path, target_config: Path, snakefile: Path = Path("Snakefile"),
          dry_run: bool = False) -> list[str]:
    """Copy and record every adoptable result (see the module docstring); returns the first
    outputs adopted (or, with `dry_run`, those that would be). Paths are relative to the
    working directory, as Snakemake's are."""
    source, target = (Experiment(load_config(p)) for p in (source_config, target_config))
    if source.name == target.name:
        raise RestoreError(f"{source_config} and {target_config} share the name "
                           f"{source.name!r}: their results are the same folder already")
    source_results, source_logs = Path("results") / source.name, Path("logs") / source.name
    target_results, target_logs = Path("results") / target.name, Path("logs") / target.name
    keys, kept = adoptable(source, target, source_results, target_results)
    if dry_run or not keys:
        return keys
    check_up_to_date(snakefile, source_config, [str(source_results / key) for key in keys])
    check_up_to_date(snakefile, target_config, [str(target_results / key) for key in kept])
    jobs = workflow_jobs(target)
    for key in keys:
        job = jobs[key]
        for path in job.outputs + job.extras:
            if (source_results / path).exists():
                _copy(source_results / path, target_results / path)
        if (source_logs / job.log).exists():
            _copy(source_logs / job.log, target_logs / job.log)
    _copy_pretrain_logs(source_results, target_results, keys)
    # --forcerun of exactly the adopted jobs: Snakemake records each with the target's
    # params and inputs; the target's own results upstream are left as they are.
    targets = [str(target_results / key) for key in keys]
    recorded = _snakemake(snakefile, target_config, "--touch", "--quiet", "--forcerun", *targets,
                          "--", *targets)
    if recorded.returncode != 0:
        raise RestoreError(f"snakemake --touch for {target_config} failed:\n"
                           f"{(recorded.stdout + recorded.stderr)[-3000:]}")
    _copy_code_record(source_results, target_results, keys)
    return keys


def _copy_pretrain_logs(source_results: Path, target_results: Path, keys: list[str]) -> None:
    """A pre-training run's loss curve (`log.jsonl`, one per run, appended checkpoint by
    checkpoint), cut at the last checkpoint adopted: the source may have trained further."""
    from .pretrain.state import truncate_log

    last: dict[str, int] = {}
    for key in keys:
        if key.startswith("pretrain/"):
            _pretrain, run, name = key.split("/")
            last[run] = max(last.get(run, 0), int(name.removeprefix("words-").removesuffix(".bin")))
    for run, words in last.items():
        log = Path("pretrain") / run / "log.jsonl"
        if (source_results / log).exists():
            _copy(source_results / log, target_results / log)
            truncate_log(target_results / log, words)


def _copy_code_record(source_results: Path, target_results: Path, keys: list[str]) -> None:
    """The adopted outputs were made by the source's code, not by the code that touched
    them: carry the source's record over, so code-change warnings stay true."""
    from .fileio import write_json

    theirs = read_code_record(source_results / CODE_RECORD)
    ours = read_code_record(target_results / CODE_RECORD)
    for key in keys:
        entry = theirs["outputs"].get(str(source_results / key))
        if entry is None:
            ours["outputs"].pop(str(target_results / key), None)
            continue
        ours["outputs"][str(target_results / key)] = entry
        ours["code"][entry[1]] = theirs["code"][entry[1]]
    used = {code for _rule, code in ours["outputs"].values()}
    ours["code"] = {k: v for k, v in ours["code"].items() if k in used}
    write_json(target_results / CODE_RECORD, ours)
