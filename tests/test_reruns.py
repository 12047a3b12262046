"""A config or data edit reruns exactly the jobs it affects, and everything downstream.

Each test edits a copy of the finished tiny run's config (or touches one of its data files)
and compares the exact set of jobs `snakemake -n` plans with the set the edit must rerun.
Dry runs change nothing, so the tests share one finished run.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from .conftest import all_tasks, inits, snakemake

pytestmark = pytest.mark.slow

Job = tuple[str, str]  # (rule, its first output, relative to results/<name>/)


def planned(config_path: Path, config: dict) -> set[Job]:
    """The jobs `snakemake -n` would run for this config, `all` left out."""
    out = snakemake(config_path, "-n").stdout
    prefix = f"results/{config['name']}/"
    jobs = set()
    for rule, outputs in re.findall(r"^rule (\w+):\n(?:    (?!output:).*\n)*    output: (.*)$",
                                    out, flags=re.M):
        jobs.add((rule, outputs.split(", ")[0].removeprefix(prefix)))
    return jobs


def edited_plan(finished_run, test_config, tmp_path: Path, edit) -> tuple[set[Job], dict]:
    """Plan a run of the finished workflow under `edit(config)` (config edited in place)."""
    path, config = test_config
    changed = yaml.safe_load(path.read_text())
    edit(changed)
    other = path.parent / f"edited-{tmp_path.name}.yaml"
    other.write_text(yaml.safe_dump(changed))
    try:
        return planned(other, changed), changed
    finally:
        other.unlink()


def finetunes(config: dict, task=None, run=None) -> set[Job]:
    return {("finetune", f"finetune/{t}/{init_run}/words-{words}/sample-0/seed-{seed}.jsonl")
            for t in all_tasks(config) if task is None or t == task or t.startswith(f"{task}-n")
            for init_run, words in inits(config, t) if run is None or init_run in run
            for seed in config["finetune"]["seeds"]}


def pretrains(config: dict, runs) -> set[Job]:
    return {("pretrain", f"pretrain/{run}/words-{words}.bin")
            for run in runs for words in config["pretrain"][run]["checkpoints"]}


REPORT = {("report", "scores.csv")}


def test_no_change_plans_nothing(finished_run, test_config):
    path, config = test_config
    assert planned(path, config) == set()


def test_finetune_epochs_rerun_the_finetunes_and_the_report(finished_run, test_config, tmp_path):
    def edit(config):
        config["finetune"]["epochs"] += 1

    jobs, config = edited_plan(finished_run, test_config, tmp_path, edit)
    assert jobs == finetunes(config) | REPORT


def test_a_runs_learn_rate_reruns_that_run_and_what_it_feeds(finished_run, test_config,
                                                            tmp_path):
    def edit(config):
        config["pretrain"]["lmao"]["settings"]["learn_rate"] = 0.002

    jobs, config = edited_plan(finished_run, test_config, tmp_path, edit)
    assert jobs == pretrains(config, ["lmao"]) | finetunes(config, run={"lmao"}) | REPORT


def test_the_encoder_width_reruns_every_encoder(finished_run, test_config, tmp_path):
    def edit(config):
        config["encoder"]["width"] = 48

    jobs, config = edited_plan(finished_run, test_config, tmp_path, edit)
    encoded = {"none", *config["pretrain"], *config["finetune"].get("multitask", {})}
    # the bag-of-words reference has no encoder: untouched
    expected = pretrains(config, config["pretrain"]) | finetunes(config, run=encoded) | REPORT
    if "parsers" in config:  # the parser is a CNN too; the head run reads its parse
        expected |= {("train_parser", "parsers/ewt"), ("parse_corpus", "parses/lee/ewt")}
    assert jobs == expected


def test_a_task_split_reruns_that_task_its_subsets_and_their_finetunes(finished_run,
                                                                      test_config, tmp_path):
    def edit(config):
        config["tasks"]["polarity"]["split"]["seed"] = 1

    jobs, config = edited_plan(finished_run, test_config, tmp_path, edit)
    builds = {("build_task", f"tasks/{task}") for task in all_tasks(config)
              if task.startswith("polarity")}
    assert builds == {("build_task", "tasks/polarity"), ("build_task", "tasks/polarity-n20")}
    assert jobs == builds | finetunes(config, task="polarity") | REPORT


@contextmanager
def edited_file(path: Path, extra: bytes) -> Iterator[None]:
    """`path` with `extra` appended (newer than every output), then put back as it was."""
    before, data = path.stat(), path.read_bytes()
    path.write_bytes(data + extra)
    try:
        yield
    finally:
        path.write_bytes(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_tasks_data_file_reruns_that_task(finished_run, test_config):
    path, config = test_config
    if "wnut17" not in config["tasks"]:
        pytest.skip("needs WNUT-17 in the shared data")
    train = path.parent / config["tasks"]["wnut17"]["source"]["train"]
    with edited_file(train, gzip.compress(b"one\tO\nmore\tO\n\n")):  # one more sentence
        jobs = planned(path, config)
    assert jobs == {("build_task", "tasks/wnut17")} | finetunes(config, task="wnut17") | REPORT


def test_touching_a_data_file_without_changing_it_reruns_nothing(finished_run, test_config):
    """Snakemake compares the checksum of an input under 1 MB before trusting its mtime."""
    path, config = test_config
    if "wnut17" not in config["tasks"]:
        pytest.skip("needs WNUT-17 in the shared data")
    train = path.parent / config["tasks"]["wnut17"]["source"]["train"]
    with edited_file(train, b""):
        assert planned(path, config) == set()


def test_a_fresh_copy_of_a_large_data_file_reruns_nothing(finished_run, test_config):
    """New timestamps on the same bytes (a copy to scratch, a re-provisioned data folder):
    Snakemake compares checksums only below 1 MB; source files are tracked by content."""
    path, config = test_config
    if "ud_ewt" not in config["tasks"]:
        pytest.skip("needs UD English EWT in the shared data")
    train = path.parent / config["tasks"]["ud_ewt"]["source"]["train"]
    assert train.stat().st_size > 2**20
    data = train.read_bytes()
    train.unlink()
    train.write_bytes(data)  # a new file: new inode, mtime and ctime
    assert planned(path, config) == set()


def test_an_edit_that_keeps_the_old_timestamp_still_reruns_that_task(finished_run,
                                                                     test_config):
    """Source files are tracked by content, not by timestamp alone."""
    path, config = test_config
    if "wnut17" not in config["tasks"]:
        pytest.skip("needs WNUT-17 in the shared data")
    train = path.parent / config["tasks"]["wnut17"]["source"]["train"]
    before = train.stat()
    with edited_file(train, gzip.compress(b"one\tO\nmore\tO\n\n")):
        os.utime(train, ns=(before.st_atime_ns, before.st_mtime_ns))
        jobs = planned(path, config)
    assert jobs == {("build_task", "tasks/wnut17")} | finetunes(config, task="wnut17") | REPORT


def test_a_vectors_source_reruns_the_table_and_all_that_uses_it(finished_run, test_config,
                                                               tmp_path):
    def edit(config):
        config["vectors"]["lee_floret"]["train"]["epochs"] = 3

    jobs, config = edited_plan(finished_run, test_config, tmp_path, edit)
    # every pre-training run predicts lee_floret; the multi-task init trains on it too
    multitask = set(config["finetune"].get("multitask", {}))
    assert jobs == ({("vectors", "vectors/lee_floret")} | pretrains(config, config["pretrain"])
                    | finetunes(config, run=set(config["pretrain"]) | multitask) | REPORT)


def test_a_change_of_package_code_is_named_not_silent(finished_run, test_config):
    """Snakemake cannot see the `lmao` modules a script imports; the workflow names the
    outputs made by other code, per rule, with the modules that changed."""
    path, config = test_config
    record_path = finished_run[0] / "code.json"
    original = record_path.read_text()
    record = json.loads(original)
    outputs = record["outputs"]
    assert {rule for rule, _key in outputs.values()} >= {"pretrain", "finetune", "report"}
    quiet = snakemake(path, "-n")
    assert "code changed" not in quiet.stdout + quiet.stderr
    for key, modules in list(record["code"].items()):  # as if encoder.py had changed since
        if "lmao/encoder.py" in modules:
            record["code"][f"old-{key}"] = {**modules, "lmao/encoder.py": "0" * 16}
    record["outputs"] = {output: [rule, f"old-{key}" if f"old-{key}" in record["code"] else key]
                         for output, (rule, key) in outputs.items()}
    record_path.write_text(json.dumps(record))
    try:
        result = snakemake(path, "-n")
        warned = result.stdout + result.stderr
    finally:
        record_path.write_text(original)
    assert "The lmao package's code changed" in warned
    for rule in ("pretrain", "finetune"):
        assert re.search(rf"rule {rule}: \d+ output\(s\).*changed: lmao/encoder.py", warned)
    assert "rule build_task" not in warned  # task building never imports the encoder
    assert "snakemake --forcerun" in warned
