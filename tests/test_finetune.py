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
    assert [r["losses"] for r in a] != [r["losses"] for r in c]
    assert all(0 <= r["scores"]["accuracy"] <= 1 for r in a)
