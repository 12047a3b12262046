"""A checkpoint loads into a plain spaCy training config through [initialize] init_tok2vec."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from spacy.training.initialize import init_nlp

from lmao.finetune import training_config
from lmao.pretrain import PretrainSettings, pretrain
from lmao.settings import EncoderSettings
from lmao.tasks import build_task

REPO = Path(__file__).resolve().parents[1]
CNN = {"width": 16, "depth": 1, "rows": [300, 50, 100, 100]}
BILSTM = {**CNN, "architecture": "bilstm", "max_length": 60}
CNN_VECTORS = {**CNN, "include_static_vectors": True}


def params(model) -> list[np.ndarray]:
    return [node.get_param(name).copy() for node in model.walk() for name in node.param_names
            if node.has_param(name)]


def checkpoint_and_task(store, vectors, out, encoder_spec, objective="own_word", n_train=20):
    """A checkpoint pre-trained on the Lee corpus, and a small polarity task."""
    settings = PretrainSettings.from_dict({"encoder": encoder_spec, "batch_words": 500,
                                           "hidden_width": 24, "objective": objective})
    [checkpoint] = pretrain(store, vectors, settings, [2000], out / "pt", progress=False)
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": n_train, "n_dev": 10}}, out / "task")
    return checkpoint, out / "task"


@pytest.mark.parametrize(("encoder_spec", "objective"), [
    (CNN, "own_word"), (BILSTM, "next_prev"), (CNN_VECTORS, "trigram")])
def test_init_tok2vec_loads_the_pretrained_weights(lee_store, lee_vectors, tmp_path,
                                                   encoder_spec, objective):
    checkpoint, task_dir = checkpoint_and_task(lee_store, lee_vectors, tmp_path, encoder_spec,
                                               objective)
    encoder = EncoderSettings.from_dict(encoder_spec)
    vectors = lee_vectors if encoder.include_static_vectors else None
    loaded = init_nlp(training_config("textcat", task_dir, encoder, {}, 0, checkpoint, vectors))
    fresh = init_nlp(training_config("textcat", task_dir, encoder, {}, 0, None, vectors))

    reference = loaded.get_pipe("tok2vec").model.copy()
    reference.from_bytes(checkpoint.read_bytes())
    expected = params(reference)
    got, baseline = (params(nlp.get_pipe("tok2vec").model) for nlp in (loaded, fresh))
    assert len(got) == len(expected) > 0
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(got, baseline, strict=True))


def test_a_frozen_encoder_keeps_its_pretrained_weights(lee_store, lee_vectors, tmp_path):
    import spacy

    from lmao.encoder import build_tok2vec
    from lmao.finetune import finetune
    from lmao.jobs import FinetuneInputs, FinetuneJob

    checkpoint, task_dir = checkpoint_and_task(lee_store, lee_vectors, tmp_path, CNN,
                                               n_train=40)
    encoder = EncoderSettings.from_dict(CNN)

    def tok2vec_after(hp: dict, name: str) -> list[np.ndarray]:
        finetune(FinetuneJob("textcat", encoder, hp, 0, 1),
                 FinetuneInputs.of(task_dir, checkpoint=checkpoint), tmp_path / f"{name}.jsonl",
                 best_model_dir=tmp_path / name)
        return params(spacy.load(tmp_path / name).get_pipe("tok2vec").model)

    reference = build_tok2vec(encoder).from_bytes(checkpoint.read_bytes())
    frozen = tok2vec_after({"freeze_encoder_epochs": 1}, "frozen")
    trained = tok2vec_after({}, "trained")
    assert all(np.array_equal(a, b) for a, b in zip(frozen, params(reference), strict=True))
    assert not all(np.allclose(a, b) for a, b in zip(trained, params(reference), strict=True))


def test_scaled_optimizer_scales_the_step_and_shares_adam_state():
    from thinc.api import Adam

    from lmao.finetune import ScaledOptimizer

    def step(optimizer) -> np.ndarray:
        weights, grad = np.ones(4, dtype="float32"), np.full(4, 0.5, dtype="float32")
        new, _ = optimizer((1, "W"), weights, grad)
        return 1.0 - new

    adam = Adam(0.01, L2=0.0, use_averages=False)
    assert np.allclose(step(ScaledOptimizer(adam, 0.0)), 0.0)
    full, tenth = step(Adam(0.01, L2=0.0, use_averages=False)), step(
        ScaledOptimizer(Adam(0.01, L2=0.0, use_averages=False), 0.1))
    assert np.allclose(tenth, full / 10)
    assert adam.nr_update[(1, "W")] == 1



def spacy_train(example, checkpoint, task_dir, out, width: int) -> subprocess.CompletedProcess:
    """`python -m spacy train` on the README's example config, sized to the test config."""
    overrides = {
        "paths.train": task_dir / "train.spacy", "paths.dev": task_dir / "dev.spacy",
        "paths.init_tok2vec": checkpoint, "training.max_epochs": 1,
        "components.tok2vec.model.embed.width": width,
        "components.tok2vec.model.embed.rows": "[1000,200,500,500]",
        "components.tok2vec.model.encode.width": width,
        "components.tok2vec.model.encode.depth": 2,
        "components.textcat.model.tok2vec.width": width,
    }
    args = [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    return subprocess.run([sys.executable, "-m", "spacy", "train", str(example), "--output",
                           str(out), *args], capture_output=True, text=True, timeout=600)


def test_the_readme_example_config_trains_from_a_checkpoint_with_spacy_train(finished_run,
                                                                             tmp_path):
    """docs/examples/textcat_init_tok2vec.cfg as a user runs it: spaCy's own CLI, a
    checkpoint the test config made; an encoder of another width is refused (so the
    checkpoint really is loaded)."""
    results, _config = finished_run
    example = REPO / "docs" / "examples" / "textcat_init_tok2vec.cfg"
    checkpoint = results / "pretrain" / "lmao" / "words-10000.bin"
    task_dir = results / "tasks" / "polarity"
    trained = spacy_train(example, checkpoint, task_dir, tmp_path / "model", width=32)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (tmp_path / "model" / "model-best" / "meta.json").exists()
    wrong = spacy_train(example, checkpoint, task_dir, tmp_path / "wrong", width=48)
    assert wrong.returncode != 0
