"""Shared fixtures: the real data sets in ../shared/data, small stores built from them, and
the tiny test config run end to end (shared by the workflow and SLURM tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared data set {path} (set LMAO_SHARED_DATA to its folder)")
    return path


@pytest.fixture(scope="session")
def lee_store(tmp_path_factory) -> Path:
    """A token store of gensim's Lee news corpus (real English text, ~60k words)."""
    from lmao.sources import iter_texts
    from lmao.store import build_store

    out = tmp_path_factory.mktemp("stores") / "lee"
    build_store(iter_texts({"type": "gensim_lee"}), out)
    return out


@pytest.fixture(scope="session")
def lee_vectors(tmp_path_factory, lee_store) -> Path:
    """Small floret vectors trained on the Lee corpus."""
    from lmao.store import TokenStore
    from lmao.vector_models import train_floret_table

    out = tmp_path_factory.mktemp("vectors") / "lee"
    train_floret_table(TokenStore(lee_store), out, dim=16, epochs=1, min_count=2, threads=1)
    return out


# ---------------------------------------------------------------- the workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run(args: list[str], cwd: Path, timeout: int = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=env)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def snakemake(config_path: Path, *extra: str, timeout: int = 600):
    return run([*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
                str(config_path.parent), "--configfile", str(config_path), *extra],
               cwd=config_path.parent, timeout=timeout)


@pytest.fixture(scope="session")
def test_config(tmp_path_factory) -> tuple[Path, dict]:
    """config/test.yaml with data paths made absolute; without ../shared, the branches that
    need it (NER, UD, the parser and the head objective) are left out."""
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    workdir = tmp_path_factory.mktemp("workflow")
    for task, folder in (("wnut17", "wnut17"), ("ud_ewt", "ud_english_ewt")):
        source = config["tasks"][task]["source"]
        if (SHARED_DATA / folder).exists():
            for split in ("train", "dev", "test"):
                source[split] = str(SHARED_DATA / folder / Path(source[split]).name)
        else:
            del config["tasks"][task]
    if "wnut17" in config["tasks"]:  # a copy the rerun tests may edit, by a relative path
        source = config["tasks"]["wnut17"]["source"]
        (workdir / "data").mkdir()
        for split in ("train", "dev", "test"):
            copy = Path("data") / f"wnut17.{split}.conll.gz"
            shutil.copyfile(source[split], workdir / copy)
            source[split] = str(copy)
    if "ud_ewt" in config["tasks"]:  # over 1 MB, past Snakemake's own checksum comparison
        source = config["tasks"]["ud_ewt"]["source"]
        copy = Path("data") / Path(source["train"]).name
        (workdir / "data").mkdir(exist_ok=True)
        shutil.copyfile(source["train"], workdir / copy)
        source["train"] = str(copy)
    if "ud_ewt" not in config["tasks"]:
        del config["parsers"]
        config["pretrain"] = {k: v for k, v in config["pretrain"].items() if "parser" not in v}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def all_tasks(config: dict) -> dict[str, dict]:
    """The configured tasks and their low-data subsets."""
    from lmao.grid import expand_train_sizes

    return expand_train_sizes(config["tasks"])


def inits(config: dict, task: str | None = None) -> set[tuple[str, int]]:
    """Every (pre-training run, words) a fine-tuning run of `task` starts from: the
    baseline, each checkpoint, each multi-task configuration (words 0) and each reference
    model that applies to the task's type (words 0; bow: text classification, spacy_cnn:
    NER and UD)."""
    applies = {"bow": {"textcat"}, "spacy_cnn": {"ner", "ud"}}
    task_type = None if task is None else all_tasks(config)[task]["type"]
    return ({("none", 0)} | {(run, words) for run, spec in config["pretrain"].items()
                             for words in spec.get("finetune_checkpoints", spec["checkpoints"])}
            | {(run, 0) for run in config["finetune"].get("multitask", {})}
            | {(name, 0) for name in config["finetune"].get("references", [])
               if task_type in applies[name]})


@pytest.fixture(scope="session")
def finished_run(test_config) -> tuple[Path, dict]:
    """The tiny test config run end to end, locally, on 2 cores."""
    path, config = test_config
    snakemake(path, "--cores", "2")
    return path.parent / "results" / config["name"], config




# ---------------------------------------------------------------- running in parallel
# `make test` runs pytest-xdist with `--dist loadgroup`: tests that share an expensive
# fixture run on one worker (else each worker would build it again), everything else is
# spread. The end-to-end run of the test config (`finished_run`, several minutes) and the
# tests that read it are one group; each module with a module-scoped run of its own (DVC,
# SLURM) is another.
SHARED_RUNS = {"finished_run": "finished_run", "pushed": "dvc", "slurm_env": "finished_run",
               "halved": "halving"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        groups = {SHARED_RUNS[name] for name in getattr(item, "fixturenames", ())
                  if name in SHARED_RUNS}
        if groups:
            item.add_marker(pytest.mark.xdist_group(sorted(groups)[0]))
