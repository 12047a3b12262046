"""A new user's config, written from the README alone (docs/examples/own_data.yaml): a CSV
sentiment set and a `token tag` NER set with official splits, no conversion script. The test
writes small real files in those shapes (IMDB reviews, WNUT-17 tweets), checks the config,
shrinks only its sizes and runs the workflow to the table."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
import yaml

from lmao.cli import main
from lmao.fileio import read_jsonl, read_lines

from .conftest import REPO, shared_data, snakemake

pytestmark = pytest.mark.slow


def write_reviews(path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review", "sentiment"])
        writer.writerows([i, row["text"], row["label"]] for i, row in enumerate(rows))


def write_entities(path, source, sentences: int) -> None:
    """The first `sentences` sentences of a WNUT-17 file as space-separated `token tag`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out, seen = [], 0
    for _, line in read_lines(source):
        line = line.replace("\ufeff", "")
        if not line.strip():
            seen += 1
            out.append("")
            if seen == sentences:
                break
            continue
        token, tag = line.split("\t")
        out.append(f"{token.replace(' ', '_')} {tag}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def test_the_readme_example_runs_on_real_files(tmp_path, monkeypatch, capsys):
    imdb = [obj for _, obj in read_jsonl(shared_data("imdb", "mini", "train.jsonl.gz"))]
    imdb_test = [obj for _, obj in read_jsonl(shared_data("imdb", "mini", "test.jsonl.gz"))]
    write_reviews(tmp_path / "data/reviews/train.csv", imdb[:400])
    write_reviews(tmp_path / "data/reviews/dev.csv", imdb[400:])
    write_reviews(tmp_path / "data/reviews/test.csv", imdb_test[::5])
    for split, n in (("train", 400), ("dev", 150), ("test", 150)):
        write_entities(tmp_path / f"data/entities/{split}.txt",
                       shared_data("wnut17", f"{split}.conll.gz"), n)

    example = REPO / "docs" / "examples" / "own_data.yaml"
    config_path = tmp_path / "own_data.yaml"
    config_path.write_text(example.read_text())
    monkeypatch.chdir(tmp_path)  # the config's paths are relative, as a user's would be
    assert main(["check-config", "--config", str(config_path)]) == 0
    assert "own_data.yaml: valid" in capsys.readouterr().out

    config = yaml.safe_load(example.read_text())  # only sizes change, nothing about the data
    config["encoder"].update(width=32, depth=2)
    config["vectors"]["reviews_floret"]["train"].update(epochs=1, dim=20)
    config["pretrain"]["lmao"]["checkpoints"] = [20000]
    config["pretrain"]["lmao"]["settings"].update(batch_words=1000, max_epochs=2)
    config["tasks"]["reviews"]["train_sizes"] = [100]
    config["finetune"].update(epochs=2, patience=2, seeds=[0, 1])  # patience ≤ epochs
    config_path.write_text(yaml.safe_dump(config))
    snakemake(config_path, "--cores", "2", timeout=1200)

    scores = pd.read_csv(tmp_path / "results" / "own_data" / "scores.csv")
    test = scores.query("split == 'test'")
    grid = set(zip(test["task"], test["pretrain_run"], strict=True))
    assert grid == {(task, run) for task in ("reviews", "reviews-n100")
                    for run in ("none", "lmao", "bow")} | {
        ("entities", run) for run in ("none", "lmao", "spacy_cnn")}
    assert set(test["seed"]) == {0, 1}
    sizes = test.groupby("task")["n_train"].first()
    assert sizes["reviews"] == 400 and sizes["reviews-n100"] == 100
    table = (tmp_path / "results" / "own_data" / "table.md").read_text()
    assert "## entities: dev ents_f" in table and "spaCy CNN + vectors (reference)" in table
