"""`lmao adopt`: another config's finished results are reused only where the jobs are the
same, and once adopted they rerun on an edit exactly as the config's own results do."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lmao.adopt import workflow_jobs
from lmao.config import load_config
from lmao.grid import Experiment

from .conftest import REPO, snakemake
from .test_reruns import finetunes, planned, pretrains

pytestmark = pytest.mark.slow


def adopt(workdir: Path, source: Path, target: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmao", "adopt", "--from", str(source),
                           "--config", str(target), "--snakefile", str(REPO / "Snakefile"),
                           *extra], cwd=workdir, capture_output=True, text=True, timeout=600)


def variant(test_config, name: str, edit=None) -> tuple[Path, dict]:
    """The test config under another name (its own results folder), edited by `edit`."""
    path, _config = test_config
    config = yaml.safe_load(path.read_text())
    config["name"] = name
    if edit is not None:
        edit(config)
    other = path.parent / f"{name}.yaml"
    other.write_text(yaml.safe_dump(config))
    return other, config


def test_the_jobs_adopt_knows_are_snakemakes(finished_run, test_config, monkeypatch):
    """Each job adopt would copy has the rule, outputs and inputs Snakemake plans for it."""
    path, config = test_config
    monkeypatch.chdir(path.parent)  # the config's data paths are relative to it
    out = snakemake(path, "-n", "--forceall").stdout
    prefix = f"results/{config['name']}/"
    planned_jobs = {}
    for rule, body in re.findall(r"^rule (\w+):\n((?:    .*\n)+)", out, flags=re.M):
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, flags=re.M))
        if "output" not in fields:  # the target rule `all`
            continue
        outputs = tuple(o.removeprefix(prefix) for o in fields["output"].split(", "))
        inputs = {i.removeprefix(prefix) for i in fields.get("input", "").split(", ")
                  if i.startswith(prefix)}
        planned_jobs[outputs[0]] = (rule, outputs, inputs)
    jobs = workflow_jobs(Experiment(load_config(path)))
    assert jobs, "no jobs"
    first_output = {out: key for key, job in jobs.items() for out in job.outputs}
    for key, job in jobs.items():
        rule, outputs, inputs = planned_jobs[key]
        assert (job.rule, job.outputs) == (rule, outputs)
        assert set(job.reads) == {first_output.get(i, i) for i in inputs}, key
    # every job Snakemake plans on the pre-training/fine-tuning chain is known
    chain = {"tokenize_corpus", "vectors", "pretrain", "build_task", "finetune"}
    assert {key for key, (rule, _o, _i) in planned_jobs.items() if rule in chain
            and not key.startswith("pretrain/lmao_head")} == set(jobs)


def test_adopted_results_are_not_rerun_and_an_edit_of_their_settings_reruns_them(
        finished_run, test_config):
    """Same chain, other fine-tuning epochs: everything up to the tasks is adopted, only the
    fine-tunes and the report are planned; then a pre-training edit reruns the adopted
    pre-training, which a plain copy (no Snakemake record of its settings) would not."""
    source, _ = test_config
    workdir = source.parent

    def more_epochs(config):
        config["finetune"]["epochs"] += 1

    target, config = variant(test_config, "adopter", more_epochs)
    result = adopt(workdir, source, target)
    assert result.returncode == 0, result.stderr
    adopted = workdir / "results" / "adopter"
    assert (adopted / "pretrain" / "lmao" / "words-10000.bin").is_file()
    assert not (adopted / "finetune").exists()
    jobs = planned(target, config)
    assert jobs == finetunes(config) | {("report", "scores.csv")} | {
        job for job in jobs if job[1].startswith(("parsers/", "parses/", "pretrain/lmao_head"))}
    # the pre-training log was carried over with the checkpoints
    assert (adopted / "pretrain" / "lmao" / "log.jsonl").read_text() == (
        finished_run[0] / "pretrain" / "lmao" / "log.jsonl").read_text()

    def faster(config):
        more_epochs(config)
        config["pretrain"]["lmao"]["settings"]["learn_rate"] = 0.002

    edited, config = variant(test_config, "adopter", faster)
    assert pretrains(config, ["lmao"]) <= planned(edited, config)

    # the same copy made with cp -a: Snakemake has no record of its settings
    copied = workdir / "results" / "copier"
    shutil.copytree(adopted / "pretrain", copied / "pretrain")
    for folder in ("corpora", "vectors"):
        shutil.copytree(adopted / folder, copied / folder)
    edited, config = variant(test_config, "copier", faster)
    assert not pretrains(config, ["lmao"]) & planned(edited, config)


def test_other_settings_are_not_adopted(finished_run, test_config):
    """A run with another learning rate keeps nothing of that run or what it feeds; the
    corpus and vector table it shares are adopted."""
    source, _ = test_config

    def faster(config):
        config["pretrain"]["lmao"]["settings"]["learn_rate"] = 0.002

    target, _config = variant(test_config, "faster", faster)
    result = adopt(source.parent, source, target, "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = {line.strip() for line in result.stdout.splitlines()[1:]}
    assert {"corpora/lee", "vectors/lee_floret"} <= listed
    assert not {key for key in listed if key.startswith("pretrain/lmao/")
                or "/lmao/" in key}
    assert any(key.startswith("finetune/") and "/none/" in key for key in listed)
    assert not (source.parent / "results" / "faster").exists()  # a dry run copies nothing


def test_results_their_own_config_would_rerun_are_refused(finished_run, test_config):
    """The source's config edited (results now stale there): nothing is adopted from it."""
    source, _ = test_config

    def edit(config):
        config["name"] = "test"  # the finished run's own folder, settings it did not use
        config["pretrain"]["lmao"]["settings"]["learn_rate"] = 0.002

    stale, _ = variant(test_config, "stale_source", edit)
    target, _ = variant(test_config, "stale_target",
                        lambda c: c["pretrain"]["lmao"]["settings"].update(learn_rate=0.002))
    result = adopt(source.parent, stale, target)
    assert result.returncode == 2
    assert "would rerun" in result.stderr
    assert not (source.parent / "results" / "stale_target").exists()


def test_a_plain_copy_is_recorded_in_place_and_then_reruns_on_an_edit(finished_run,
                                                                        test_config):
    """A whole finished run copied with `cp -a` (no Snakemake record of its settings): adopt
    records the copies whose bytes equal the source's, leaves their files and timestamps as
    they are (nothing is planned), and from then on an edit of their settings reruns them."""
    source, _ = test_config
    workdir = source.parent
    copied = workdir / "results" / "plain_copy"
    shutil.copytree(finished_run[0], copied)  # copy2: timestamps kept, as cp -a does
    target, config = variant(test_config, "plain_copy")
    checkpoint = copied / "pretrain" / "lmao" / "words-10000.bin"
    before = checkpoint.stat().st_mtime_ns
    result = adopt(workdir, source, target)
    assert result.returncode == 0, result.stderr
    assert "adopted nothing" in result.stdout
    assert "pretrain/lmao/words-10000.bin" in result.stdout.split("recorded", 1)[1]
    assert checkpoint.stat().st_mtime_ns == before
    assert planned(target, config) == set()

    def faster(config):
        config["pretrain"]["lmao"]["settings"]["learn_rate"] = 0.002

    edited, config = variant(test_config, "plain_copy", faster)
    assert pretrains(config, ["lmao"]) <= planned(edited, config)


def test_a_copy_whose_bytes_differ_is_not_recorded(finished_run, test_config):
    """A checkpoint that is not the source's (here: one byte changed) is not vouched for,
    nor is anything made from it."""
    source, _ = test_config
    copied = source.parent / "results" / "altered_copy"
    shutil.copytree(finished_run[0], copied)
    checkpoint = copied / "pretrain" / "lmao" / "words-10000.bin"
    data = bytearray(checkpoint.read_bytes())
    data[-1] ^= 1
    checkpoint.write_bytes(bytes(data))
    target, _config = variant(test_config, "altered_copy")
    result = adopt(source.parent, source, target, "--dry-run")
    assert result.returncode == 0, result.stderr
    recorded = result.stdout.split("would record", 1)[1]
    assert {"corpora/lee", "pretrain/lmao/words-5000.bin"} <= set(recorded.split())
    assert "pretrain/lmao/words-10000.bin" not in recorded
    assert "/lmao/words-10000/" not in recorded  # nor the fine-tunes made from it
    assert any("/lmao/words-5000/" in key for key in recorded.split())
