import json

from lmao.encoder import EncoderSettings
from lmao.finetune import finetune
from lmao.tasks import build_task

ENCODER = EncoderSettings(width=16, depth=1, rows=[300, 50, 100, 100])


def scores(path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_same_seed_same_scores_other_seed_other_scores(tmp_path):
    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 40}}, task_dir)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        finetune("textcat", task_dir, ENCODER, {"dropout": 0.3}, seed, 2,
                 tmp_path / f"{name}.jsonl", labels={"seed": seed})
    a, b, c = (scores(tmp_path / f"{n}.jsonl") for n in "abc")
    assert a == b
    assert [r.get("losses") for r in a] != [r.get("losses") for r in c]
    assert all(0 <= r["scores"]["accuracy"] <= 1 for r in a)


def test_the_best_dev_epoch_is_scored_once_on_test(tmp_path):
    import spacy

    from lmao.finetune import PRIMARY_METRIC, evaluate, read_examples

    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 80, "n_dev": 40, "n_test": 60}}, task_dir)
    rows = finetune("textcat", task_dir, ENCODER, {"learn_rate": 0.005}, 0, 4,
                    tmp_path / "scores.jsonl", best_model_dir=tmp_path / "best")
    assert [r["split"] for r in rows] == ["dev"] * 4 + ["test"]
    dev, [test] = rows[:4], rows[4:]
    best = max(dev, key=lambda r: r["scores"][PRIMARY_METRIC["textcat"]])  # the first best
    assert test["epoch"] == best["epoch"]
    nlp = spacy.load(tmp_path / "best")
    assert test["scores"] == evaluate("textcat", nlp, read_examples(nlp, task_dir / "test.spacy"))
    assert scores(tmp_path / "scores.jsonl")[-1]["split"] == "test"
