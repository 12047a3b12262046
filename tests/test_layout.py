"""lmao.layout is the one definition of where results live: the rules' outputs, adopt's
keys and a pre-training run's own files are its paths."""

from __future__ import annotations

from pathlib import Path

from lmao.layout import Layout
from lmao.pretrain import RunPaths


def test_paths_under_a_configs_folders_and_relative_to_them():
    layout, relative = Layout.of("study"), Layout.relative()
    assert layout.checkpoint("lmao", 10**7) == "results/study/pretrain/lmao/words-10000000.bin"
    assert relative.checkpoint("lmao", 10**7) == "pretrain/lmao/words-10000000.bin"
    assert layout.finetune_scores("imdb", "none", 0, 1, 2) == (
        "results/study/finetune/imdb/none/words-0/sample-1/seed-2.jsonl")
    assert layout.job_log("finetune", "imdb", "none", "words-0", "sample-1", "seed-2") == (
        "logs/study/finetune/imdb/none/words-0/sample-1/seed-2.log")
    assert layout.job_log("report", "report") == "logs/study/report.log"
    assert relative.job_log("tokenize_corpus", "lee") == "tokenize/lee.log"


def test_wildcards_give_the_rules_patterns():
    pattern = Layout.of("x").state("{run}", "{words}")
    assert pattern == "results/x/pretrain/{run}/words-{words}.state"


def test_a_pretraining_run_names_its_files_as_the_rules_do():
    layout = Layout.of("x")
    run = RunPaths(Path(layout.pretrain_run("lmao")))
    assert str(run.checkpoint(500)) == layout.checkpoint("lmao", 500)
    assert str(run.state(500)) == layout.state("lmao", 500)
    assert str(run.log) == layout.pretrain_log("lmao")
