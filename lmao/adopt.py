"""Reuse another config's finished results where this config's jobs are the same ones.

Two grids often share their expensive front: the same corpus, vector table and
pre-training run under two configs (a low-data variant of a study, a different classifier
on the same checkpoints). `lmao adopt --from SOURCE --config TARGET` copies the outputs of
every job whose settings (its `params:`) and inputs are identical under both configs and
that TARGET has not made yet, then has Snakemake record them as TARGET's jobs. A later edit
of TARGET then reruns them exactly as if TARGET had made them. A plain `cp` leaves
Snakemake no record of the settings the copies were made with ("missing provenance"), so
an edit of those settings would not rerun them: the copies would look right and be wrong.
Results TARGET holds already, from the same job and with the same bytes as SOURCE's (such a
plain copy), are recorded the same way, their files and timestamps left as they are.
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

from .config import load_config
from .fileio import check_replaceable_folder
from .grid import Experiment
from .layout import CODE_RECORD, Layout
from .provenance import read_code_record


class AdoptError(RuntimeError):
    """Results that cannot be adopted: they would not follow from the target config."""


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
    first output (paths below the results folder, from `lmao.layout` as the rules' are; a
    test checks the jobs against Snakemake's own plan); jobs that read a parser's parse are
    left out, so they are never adopted."""
    config, at = experiment.config, Layout.relative()
    jobs: dict[str, Job] = {}
    for corpus in config["corpora"]:
        jobs[at.store(corpus)] = Job("tokenize_corpus", (at.store(corpus),),
                                     at.job_log("tokenize_corpus", corpus),
                                     experiment.corpus_job(corpus).params())
    for table, spec in config["vectors"].items():
        reads = (at.store(spec["train"]["corpus"]),) if "train" in spec else ()
        jobs[at.vectors(table)] = Job("vectors", (at.vectors(table),),
                                      at.job_log("vectors", table),
                                      experiment.vectors_job(table).params(), reads)
    for run, spec in config["pretrain"].items():
        if "parser" in spec:
            continue
        tables = {spec["vectors"], experiment.input_vectors(run)} - {None}
        previous = None
        for words in experiment.checkpoints(run):
            reads = [at.store(spec["corpus"]), *(at.vectors(t) for t in sorted(tables))]
            if previous is not None:
                reads.append(at.checkpoint(run, previous))
            jobs[at.checkpoint(run, words)] = Job(
                "pretrain", (at.checkpoint(run, words), at.state(run, words)),
                at.job_log("pretrain", run, f"words-{words}"),
                experiment.pretrain_job(run, words).params(), tuple(reads),
                (at.pretrain_benchmark(run, words),))
            previous = words
    tasks = experiment.tasks()
    for task, spec in tasks.items():
        reads = (at.task(spec["subset_of"]),) if "subset_of" in spec else ()
        jobs[at.task(task)] = Job("build_task", (at.task(task),), at.job_log("build_task", task),
                                  experiment.task_job(task).params(), reads)
    multitask = experiment.multitask()
    # A halving search's runs are stages and decisions: its fine-tuning is never adopted.
    trained = experiment.trained_tasks() if experiment.halving() is None else []
    for task in trained:
        for init in experiment.inits_for(task):
            reads = [at.task(task)]
            if init.run in multitask:
                aux = multitask[init.run]
                reads += [at.store(aux["corpus"]), at.vectors(aux["vectors"])]
            elif init.run in config["pretrain"]:
                reads.append(at.checkpoint(init.run, init.words))
            table = experiment.input_vectors(init.run)
            if table is not None:
                reads.append(at.vectors(table))
            for sample in range(experiment.n_samples()):
                for seed in config["finetune"]["seeds"]:
                    scores = at.finetune_scores(task, init.run, init.words, sample, seed)
                    log = at.job_log("finetune", task, init.run, f"words-{init.words}",
                                     f"sample-{sample}", f"seed-{seed}")
                    jobs[scores] = Job(
                        "finetune", (scores,), log,
                        experiment.finetune_job(task, init.run, init.words, sample, seed).params(),
                        tuple(dict.fromkeys(reads)))
    return jobs


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files, or two folders file by file, hold the same bytes."""
    if a.is_dir() and b.is_dir():
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
            filecmp.cmp(a / f, b / f, shallow=False) for f in files)
    return a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)


@dataclass(frozen=True)
class Plan:
    """What `adopt` does: the results it copies from the source, and the target's own
    results it records (same job, same bytes as the source's), each in dependency order."""

    copy: list[str]
    record: list[str]


def adoptable(source: Experiment, target: Experiment, source_results: Path,
              target_results: Path) -> Plan:
    """A job is copied when it is the same job under both configs (rule, outputs, params and
    the jobs it reads), the source has made it and the target has not, and everything it
    reads is copied with it or recorded. A job the target has made already is recorded when
    it is the same job, all its outputs hold the source's bytes, and all it reads is
    recorded too (a table trained twice on many threads may differ: then neither is)."""
    theirs, ours = workflow_jobs(source), workflow_jobs(target)
    same = {key for key, job in ours.items() if theirs.get(key) == job}
    copied: dict[str, bool] = {}
    recorded: dict[str, bool] = {}

    def records(key: str) -> bool:
        if key not in recorded:
            job = ours.get(key)
            recorded[key] = (
                job is not None and key in same
                and all(_same_bytes(source_results / path, target_results / path)
                        for path in job.outputs)
                and all(records(read) for read in job.reads))
        return recorded[key]

    def copies(key: str) -> bool:
        if key not in copied:
            job = ours.get(key)
            copied[key] = (
                job is not None and key in same
                and all((source_results / path).exists() for path in job.outputs)
                and not any((target_results / path).exists() for path in job.outputs)
                and all(copies(read) or records(read) for read in job.reads))
        return copied[key]

    return Plan([key for key in ours if copies(key)], [key for key in ours if records(key)])


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
        raise AdoptError(f"{config}: Snakemake would rerun some of the results to adopt, so "
                         "they do not follow from that config; bring it up to date first. "
                         f"snakemake --dry-run said:\n{(plan.stdout + plan.stderr)[-3000:]}")


def _copy(source: Path, target: Path) -> None:
    """Copy a file or folder with its timestamps, whole or not at all."""
    check_replaceable_folder(target)
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
          dry_run: bool = False) -> Plan:
    """Copy and record every adoptable result (see the module docstring); returns what was
    done (or, with `dry_run`, what would be). Paths are relative to the working directory,
    as Snakemake's are."""
    source, target = (Experiment(load_config(p)) for p in (source_config, target_config))
    if source.name == target.name:
        raise AdoptError(f"{source_config} and {target_config} share the name "
                         f"{source.name!r}: their results are the same folder already")
    theirs, ours = Layout.of(source.name), Layout.of(target.name)
    source_results, source_logs = Path(theirs.results), Path(theirs.logs)
    target_results, target_logs = Path(ours.results), Path(ours.logs)
    plan = adoptable(source, target, source_results, target_results)
    if dry_run or not (plan.copy or plan.record):
        return plan
    check_up_to_date(snakefile, source_config,
                     [str(source_results / key) for key in plan.copy + plan.record])
    check_up_to_date(snakefile, target_config, [str(target_results / key) for key in plan.record])
    jobs = workflow_jobs(target)
    for key in plan.copy:
        job = jobs[key]
        for path in job.outputs + job.extras:
            if (source_results / path).exists():
                _copy(source_results / path, target_results / path)
        if (source_logs / job.log).exists():
            _copy(source_logs / job.log, target_logs / job.log)
    _copy_pretrain_logs(source_results, target_results, plan.copy)
    # --forcerun of exactly these jobs: Snakemake records each with the target's params and
    # inputs. The recorded results get their own timestamps back, so that the target's
    # results made from them stay newer than they are (as they were).
    outputs = [target_results / path for key in plan.record for path in jobs[key].outputs]
    kept = _timestamps(outputs)
    targets = [str(target_results / key) for key in plan.copy + plan.record]
    touched = _snakemake(snakefile, target_config, "--touch", "--quiet", "--forcerun", *targets,
                         "--", *targets)
    for output in outputs:  # e.g. a .snakemake_timestamp the touch added to a folder
        for path in set(_timestamps([output])) - set(kept):
            os.utime(path, ns=kept[output], follow_symlinks=False)
    for path, (atime, mtime) in kept.items():
        os.utime(path, ns=(atime, mtime), follow_symlinks=False)
    if touched.returncode != 0:
        raise AdoptError(f"snakemake --touch for {target_config} failed:\n"
                         f"{(touched.stdout + touched.stderr)[-3000:]}")
    _copy_code_record(source_results, target_results, plan.copy, plan.record)
    return plan


def _timestamps(paths: list[Path]) -> dict[Path, tuple[int, int]]:
    """Access and modification times (ns) of these files and folders and all they hold."""
    found = [p for path in paths for p in ([path, *path.rglob("*")] if path.is_dir() else [path])]
    return {p: (p.lstat().st_atime_ns, p.lstat().st_mtime_ns) for p in found}


def _copy_pretrain_logs(source_results: Path, target_results: Path, keys: list[str]) -> None:
    """A pre-training run's loss curve (`log.jsonl`, one per run, appended checkpoint by
    checkpoint), cut at the last checkpoint adopted: the source may have trained further."""
    from .pretrain.state import truncate_log

    at = Layout.relative()
    last: dict[str, int] = {}
    for key in keys:
        _first, run, name = (key.split("/") + ["", ""])[:3]
        if key == at.checkpoint(run, name.removeprefix("words-").removesuffix(".bin")):
            last[run] = max(last.get(run, 0), int(name.removeprefix("words-").removesuffix(".bin")))
    for run, words in last.items():
        log = Path(at.pretrain_log(run))
        if (source_results / log).exists():
            _copy(source_results / log, target_results / log)
            truncate_log(target_results / log, words)


def _copy_code_record(source_results: Path, target_results: Path, copied: list[str],
                      recorded: list[str]) -> None:
    """The copied outputs were made by the source's code, not by the code that touched
    them: carry the source's record over, so code-change warnings stay true. A recorded
    result keeps the target's own entry where it has one."""
    from .fileio import write_json

    theirs = read_code_record(source_results / CODE_RECORD)
    ours = read_code_record(target_results / CODE_RECORD)
    for key in copied + recorded:
        if key in recorded and str(target_results / key) in ours["outputs"]:
            continue
        entry = theirs["outputs"].get(str(source_results / key))
        if entry is None:
            ours["outputs"].pop(str(target_results / key), None)
            continue
        ours["outputs"][str(target_results / key)] = entry
        ours["code"][entry[1]] = theirs["code"][entry[1]]
    used = {code for _rule, code in ours["outputs"].values()}
    ours["code"] = {k: v for k, v in ours["code"].items() if k in used}
    write_json(target_results / CODE_RECORD, ours)
