import json

from lmao.finetune import finetune, train_words
from lmao.jobs import FinetuneInputs, FinetuneJob
from lmao.settings import EncoderSettings
from lmao.tasks import build_task

ENCODER = EncoderSettings(width=16, depth=1, rows=[300, 50, 100, 100])


def textcat(task_dir, out, hp=None, seed=0, epochs=2, *, encoder=ENCODER, best=None,
            inputs=None, **job) -> list[dict]:
    """A text classification run of `finetune`, as the rule's script calls it."""
    return finetune(FinetuneJob("textcat", encoder, hp or {}, seed, epochs, **job),
                    FinetuneInputs.of(task_dir, **(inputs or {})), out, best_model_dir=best)


def scores(path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_same_seed_same_scores_other_seed_other_scores(tmp_path):
    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 40}}, task_dir)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        textcat(task_dir, tmp_path / f"{name}.jsonl", {"dropout": 0.3}, seed,
                labels={"seed": seed})
    a, b, c = (scores(tmp_path / f"{n}.jsonl") for n in "abc")
    assert a == b
    assert [r.get("losses") for r in a] != [r.get("losses") for r in c]
    assert all(0 <= r["scores"]["accuracy"] <= 1 for r in a)


def test_the_best_dev_epoch_is_scored_once_on_test(tmp_path):
    import spacy

    from lmao.finetune import evaluate, read_examples
    from lmao.grid import PRIMARY_METRIC

    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 80, "n_dev": 40, "n_test": 60}}, task_dir)
    rows = textcat(task_dir, tmp_path / "scores.jsonl", {"learn_rate": 0.005}, epochs=4,
                   best=tmp_path / "best")
    assert [r["split"] for r in rows] == ["dev"] * 4 + ["test"]
    dev, [test] = rows[:4], rows[4:]
    best = max(dev, key=lambda r: r["scores"][PRIMARY_METRIC["textcat"]])  # the first best
    assert test["epoch"] == best["epoch"]
    nlp = spacy.load(tmp_path / "best")
    assert test["scores"] == evaluate("textcat", nlp, read_examples(nlp, task_dir / "test.spacy"))
    assert scores(tmp_path / "scores.jsonl")[-1]["split"] == "test"


def test_multitask_adds_the_lmao_loss_on_unlabelled_text(lee_store, lee_vectors, tmp_path):
    """With an auxiliary LMAO objective every epoch logs its loss, and the shared encoder
    ends up elsewhere than without it (same seed, same task batches)."""
    import numpy as np
    import spacy

    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 30}}, task_dir)
    aux = {"corpus": "lee", "vectors": "lee", "weight": 1.0, "batch_words": 300,
           "settings": {"hidden_width": 0}}
    unlabelled = {"aux_store": lee_store, "aux_vectors": lee_vectors}
    weights = {}
    for name, auxiliary in (("plain", None), ("multitask", aux)):
        rows = textcat(task_dir, tmp_path / f"{name}.jsonl", best=tmp_path / name,
                       multitask=auxiliary, inputs=unlabelled if auxiliary else None)
        losses = [row["losses"] for row in rows if row["split"] == "dev"]
        assert all(("lmao_aux" in lo) == (auxiliary is not None) for lo in losses)
        model = spacy.load(tmp_path / name).get_pipe("tok2vec").model
        weights[name] = [node.get_param(param) for node in model.walk()
                         for param in node.param_names if node.has_param(param)]
    assert losses[-1]["lmao_aux"] > 0
    assert not all(np.array_equal(a, b)
                   for a, b in zip(weights["plain"], weights["multitask"], strict=True))


def test_the_bag_of_words_reference_trains_without_an_encoder(tmp_path):
    """spaCy's efficiency text classifier: no tok2vec in the pipeline, no checkpoint, and it
    learns the demo's newsgroups task (atheism or space?) well above chance."""
    from lmao.finetune import training_config
    from lmao.settings import EncoderSettings
    from lmao.tasks import build_task

    task = {"type": "textcat", "source": {"type": "gensim_newsgroups"}, "max_words": 200,
            "split": {"seed": 0, "n_train": 100, "n_dev": 50}}
    build_task(task, tmp_path / "task")
    config = training_config("textcat", tmp_path / "task", EncoderSettings(), {}, 0,
                             textcat="bow")
    assert config["nlp"]["pipeline"] == ["textcat"] and "pretraining" not in config
    assert config["components"]["textcat"]["model"]["@architectures"] == "spacy.TextCatBOW.v3"
    rows = textcat(tmp_path / "task", tmp_path / "log.jsonl", epochs=4, encoder=None,
                   textcat="bow")
    assert max(row["scores"]["accuracy"] for row in rows if row["split"] == "dev") > 0.75


def test_the_ensemble_classifier_listens_to_the_encoder(tmp_path):
    from lmao.finetune import training_config
    from lmao.settings import EncoderSettings

    config = training_config("textcat", tmp_path, EncoderSettings(width=32), {}, 0,
                             textcat="ensemble")
    model = config["components"]["textcat"]["model"]
    assert model["@architectures"] == "spacy.TextCatEnsemble.v2"
    assert model["tok2vec"]["width"] == 32 and config["nlp"]["pipeline"][0] == "tok2vec"


def test_patience_stops_a_run_whose_dev_score_stops_improving(tmp_path):
    """With a learning rate of 0 the dev score never improves after epoch 1: patience 2 stops
    the run after epoch 3 (saying so), patience 0 trains every epoch; the test line is the
    best epoch's either way."""
    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 40, "n_dev": 30, "n_test": 30}}, task_dir)
    stopped = textcat(task_dir, tmp_path / "stopped.jsonl", {"learn_rate": 0.0}, epochs=8,
                      patience=2)
    assert [(r["split"], r["epoch"]) for r in stopped] == [
        ("dev", 1), ("dev", 2), ("dev", 3), ("test", 1)]
    assert stopped[2]["stopped"] == "patience" and "stopped" not in stopped[1]
    full = textcat(task_dir, tmp_path / "full.jsonl", {"learn_rate": 0.0}, epochs=4,
                   patience=0)
    assert [r["epoch"] for r in full if r["split"] == "dev"] == [1, 2, 3, 4]


def test_a_small_training_set_gets_smaller_batches_and_the_demo_genre_task_learns(tmp_path):
    """The updates-per-epoch floor: 200 passages of 40 words in 1,000-word batches would be
    ~9 updates an epoch; with the default floor of 50 the batches hold ~180 tokens."""
    task = {"type": "textcat", "source": {"type": "gensim_genre"},
            "split": {"seed": 0, "n_train": 200, "n_dev": 100, "n_test": 200}}
    build_task(task, tmp_path / "task")
    rows = textcat(tmp_path / "task", tmp_path / "a.jsonl", epochs=3, textcat="bow")
    words = train_words(tmp_path / "task" / "train.spacy")
    assert 200 * 40 <= words < 1000 * 12  # whitespace words plus punctuation
    assert {row["batch_words"] for row in rows} == {words // 50}
    assert max(row["scores"]["accuracy"] for row in rows if row["split"] == "dev") > 0.8
    assert all(0.5 <= row["scores"]["majority_class"] < 0.6 for row in rows)  # ~balanced
    unfloored = textcat(tmp_path / "task", tmp_path / "b.jsonl", {"min_updates_per_epoch": 0},
                        epochs=1, textcat="bow")
    assert unfloored[0]["batch_words"] == 1000


class Killed(Exception):
    """Stands for SIGKILL or a pre-emption right after an epoch's state was saved."""


def test_a_killed_run_resumes_after_its_last_epoch_with_the_same_scores(tmp_path, monkeypatch):
    """Killed after epoch 2 of 4, the rerun trains epochs 3 and 4 only and writes the very
    log (scores, losses, best epoch's test score) of an uninterrupted run, and the best
    epoch's pipeline (which Snakemake deleted with the failed job's outputs); the state is
    gone once the log is complete."""
    import spacy

    from lmao.finetune import evaluate, read_examples
    from lmao.finetune_state import EpochStates

    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 30, "n_test": 30}}, task_dir)
    run = {"hp": {"dropout": 0.3}, "seed": 5, "epochs": 4}
    textcat(task_dir, tmp_path / "straight.jsonl", **run)
    save = EpochStates.save

    def save_then_die(self, nlp, optimizer, ops, shuffle, progress):
        save(self, nlp, optimizer, ops, shuffle, progress)
        if len(progress["rows"]) == 2:
            raise Killed

    monkeypatch.setattr(EpochStates, "save", save_then_die)
    killed, best = tmp_path / "killed.jsonl", tmp_path / "best"
    try:
        textcat(task_dir, killed, best=best, **run)
    except Killed:
        pass
    assert not killed.exists() and (tmp_path / ".killed.jsonl.resume").exists()
    assert not best.exists()  # (written once the run is complete)
    trained = []
    monkeypatch.setattr(EpochStates, "save",
                        lambda self, *a: trained.append(a[-1]["rows"][-1]["epoch"]))
    textcat(task_dir, killed, best=best, **run)
    assert trained == [3, 4]
    assert scores(killed) == scores(tmp_path / "straight.jsonl")
    assert not (tmp_path / ".killed.jsonl.resume").exists()
    nlp = spacy.load(best)
    test = evaluate("textcat", nlp, read_examples(nlp, task_dir / "test.spacy"))
    assert test == scores(killed)[-1]["scores"]


def test_a_saved_state_of_other_settings_or_code_is_not_resumed(tmp_path, monkeypatch, capsys):
    from lmao import finetune_state
    from lmao.finetune_state import EpochStates

    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 30}}, task_dir)
    save = EpochStates.save

    def save_then_die(self, *args):
        save(self, *args)
        raise Killed

    monkeypatch.setattr(EpochStates, "save", save_then_die)
    try:
        textcat(task_dir, tmp_path / "a.jsonl", {"learn_rate": 0.01})
    except Killed:
        pass
    try:
        textcat(task_dir, tmp_path / "c.jsonl", {"learn_rate": 0.002})
    except Killed:
        pass
    monkeypatch.undo()
    textcat(task_dir, tmp_path / "a.jsonl", {"learn_rate": 0.002})
    assert "other settings or data; starting over" in capsys.readouterr().err
    textcat(task_dir, tmp_path / "b.jsonl", {"learn_rate": 0.002})
    assert scores(tmp_path / "a.jsonl") == scores(tmp_path / "b.jsonl")
    monkeypatch.setattr(finetune_state, "code_version", lambda: "fixed since the crash")
    textcat(task_dir, tmp_path / "c.jsonl", {"learn_rate": 0.002})
    assert "starting over" in capsys.readouterr().err
    assert scores(tmp_path / "c.jsonl") == scores(tmp_path / "b.jsonl")


def test_halving_stages_continue_a_run_into_the_log_of_an_uninterrupted_run(tmp_path,
                                                                            monkeypatch):
    """A run paused after epochs 1 and 3 (two halving stages: their logs are the first 1
    and 3 lines) and then finished trains each epoch once and writes the very log of a run
    that was never paused, the test line included; the state is gone at the end."""
    from lmao.finetune_state import EpochStates

    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 30, "n_test": 30}}, task_dir)
    run = {"hp": {"dropout": 0.3}, "seed": 2, "epochs": 5}
    straight = tmp_path / "straight.jsonl"
    textcat(task_dir, straight, **run)
    final, state = tmp_path / "final.jsonl", tmp_path / ".final.jsonl.resume"
    trained = []
    save = EpochStates.save

    def counted(self, nlp, optimizer, ops, shuffle, progress):
        trained.append(progress["rows"][-1]["epoch"])
        save(self, nlp, optimizer, ops, shuffle, progress)
        if progress["rows"][-1]["epoch"] == die_after:
            raise Killed

    monkeypatch.setattr(EpochStates, "save", counted)
    die_after = None

    def stage(pause: int) -> list[dict]:
        out = tmp_path / f"stage-{pause}.jsonl"
        finetune(FinetuneJob("textcat", ENCODER, run["hp"], run["seed"], run["epochs"],
                             pause_after=pause), FinetuneInputs.of(task_dir), out,
                 state_path=state)
        return scores(out)

    for pause in (1, 3):
        assert stage(pause) == scores(straight)[:pause]
        assert state.exists()
    textcat(task_dir, final, **run)
    assert trained == [1, 2, 3, 4, 5]
    assert scores(final) == scores(straight)
    assert scores(final)[-1]["split"] == "test"
    assert not state.exists()
    # a stage asked for when the run's state is further on writes its lines, trains nothing
    die_after = 4
    try:
        textcat(task_dir, final, **run)
    except Killed:
        pass
    trained.clear()
    assert stage(2) == scores(straight)[:2]
    assert trained == [] and state.exists()


def test_the_pipeline_is_initialised_from_one_read_of_the_training_corpus(tmp_path,
                                                                            monkeypatch):
    """spaCy's init_nlp reads (and re-tokenizes) the training corpus once per pass it
    makes; inside `corpus_read_once` it reads it once and builds the same pipeline: the
    same labels in the same order, the same initial weights."""
    from spacy.training import Corpus
    from spacy.training.initialize import init_nlp

    from lmao.finetune import corpus_read_once, training_config
    from lmao.settings import DEFAULT_HYPERPARAMETERS

    task_dir = tmp_path / "task"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 40}}, task_dir)
    config = training_config("textcat", task_dir, ENCODER, DEFAULT_HYPERPARAMETERS, 0, None,
                             None)
    passes = []
    plain_make = Corpus.make_examples

    def counted(corpus, nlp, docs):
        passes.append(corpus.path.name)
        return plain_make(corpus, nlp, docs)

    monkeypatch.setattr(Corpus, "make_examples", counted)
    plain = init_nlp(config)
    plain_passes, passes[:] = list(passes), []
    with corpus_read_once():
        once = init_nlp(config)
    assert len(plain_passes) >= 3 and passes == ["train.spacy"]
    assert Corpus.__call__ is not None and "first_pass" not in Corpus.__call__.__qualname__
    assert once.pipe_names == plain.pipe_names
    assert once.get_pipe("textcat").labels == plain.get_pipe("textcat").labels
    for name in plain.pipe_names:
        assert once.get_pipe(name).to_bytes() == plain.get_pipe(name).to_bytes(), name
