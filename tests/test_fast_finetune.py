"""The fine-tuning fast path (lmao.fast_finetune): spaCy's tok2vec model computed faster,
with the same outputs, gradients, dropout masks and updates as its plain forward."""

from __future__ import annotations

import numpy as np
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training.initialize import init_nlp
from thinc.api import Adam, set_dropout_rate

from lmao.fast_finetune import (
    FastTok2VecForward,
    fast_path_of,
    greedy_parse,
    install_fast_path,
    remove_fast_path,
)
from lmao.finetune import ScaledOptimizer, apply_gradients, read_examples, training_config
from lmao.ops import BlasOps, using_ops
from lmao.settings import EncoderSettings
from lmao.sources import gensim_test_data
from lmao.tasks import build_task

from .conftest import shared_data
from .test_finetune import textcat

STATIC = EncoderSettings(width=24, depth=2, rows=[300, 50, 100, 100],
                         include_static_vectors=True)
PLAIN = EncoderSettings(width=16, depth=1, rows=[300, 50, 100, 100])


@pytest.fixture(scope="module")
def polarity(tmp_path_factory):
    out = tmp_path_factory.mktemp("polarity")
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 80, "n_dev": 30, "n_test": 30}}, out)
    return out


@pytest.fixture(scope="module")
def lee_lines() -> list[str]:
    return (gensim_test_data() / "lee_background.cor").read_text().splitlines()


@pytest.fixture(scope="module")
def glove_like(tmp_path_factory, lee_lines):
    """A default-mode vectors table of half the Lee corpus' words (random 8-dim rows): the
    other half has no vector, as GloVe lacks words."""
    from lmao.vectors import save_table

    words = sorted({w for line in lee_lines[:100] for w in line.split()})[::2]
    out = tmp_path_factory.mktemp("vectors") / "table"
    save_table(words, np.random.default_rng(0).standard_normal((len(words), 8)), out)
    return out


def pipeline(task_dir, encoder, vectors=None, seed=0, task_type="textcat"):
    config = training_config(task_type, task_dir, encoder, {}, seed, None, vectors)
    with using_ops(BlasOps(seed=seed)):
        return init_nlp(config)


def real_docs(nlp, lines: list[str]) -> list[Doc]:
    """A batch mixing lengths: long and short passages, empty Docs (first, in the middle,
    last), 1-token Docs, tokenizer exceptions (token-level NORMs: "n't" → "not")."""
    docs = [nlp.make_doc(line) for line in lines[:6]]
    one = [nlp.make_doc("Hello"), Doc(nlp.vocab, words=["xyzzyplugh"])]
    empty = lambda: Doc(nlp.vocab, words=[])  # noqa: E731
    batch = [empty(), docs[0], one[0], nlp.make_doc("They don't, it isn't."), empty(),
             *docs[1:], one[1], empty()]
    assert any(t.norm_ != t.lex.norm_ for doc in batch for t in doc)
    return batch


def forward_and_gradients(model, docs, drop: float, seed: int = 1):
    """Outputs, predictions and every parameter gradient for one random output gradient,
    the dropout stream re-seeded (so both paths draw from the same stream)."""
    set_dropout_rate(model, drop)
    model.ops.rng = np.random.default_rng(seed)
    for node in model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                node.set_grad(name, node.ops.alloc(node.get_grad(name).shape))
    outputs, backprop = model.begin_update(docs)
    rng = np.random.default_rng(2)
    d_outputs = [rng.standard_normal(y.shape).astype("float32") for y in outputs]
    backprop(d_outputs)
    grads = [(node.name, name, node.get_grad(name).copy()) for node in model.walk()
             for name in node.param_names if node.has_grad(name)]
    return [y.copy() for y in outputs], model.predict(docs), grads


@pytest.mark.parametrize("vectors", ["none", "default", "floret"])
def test_the_fast_forward_computes_spacys_outputs_and_gradients(polarity, lee_lines, glove_like,
                                                                  lee_vectors, vectors,
                                                                  monkeypatch):
    """On real Docs (empty, 1-token and long ones in one batch), with dropout on: the same
    outputs (the same masks, drawn in spaCy's order), predictions (here in pieces of ~30
    rows, documents longer than that alone) and parameter gradients; words without a
    static vector included."""
    import lmao.fast_finetune

    monkeypatch.setattr(lmao.fast_finetune, "PREDICT_ROWS", 30)
    table = {"none": None, "default": glove_like, "floret": lee_vectors}[vectors]
    nlp = pipeline(polarity, STATIC if table else PLAIN, table)
    model = nlp.get_pipe("tok2vec").model
    docs = real_docs(nlp, lee_lines)
    if vectors == "default":
        rows = nlp.vocab.vectors.find(keys=[t.orth for doc in docs for t in doc])
        assert (rows < 0).any() and (rows >= 0).any()
    for drop in (0.0, 0.25):
        plain = forward_and_gradients(model, docs, drop)
        assert install_fast_path(nlp) is None
        assert isinstance(model._func, FastTok2VecForward)
        fast = forward_and_gradients(model, docs, drop)
        remove_fast_path(nlp)
        assert [y.shape for y in fast[0]] == [(len(doc), model.get_dim("nO")) for doc in docs]
        for a, b in zip(plain[0] + plain[1], fast[0] + fast[1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # (layer-normed: ~1)
        assert [g[:2] for g in plain[2]] == [g[:2] for g in fast[2]]
        for (node, name, a), (_, _, b) in zip(plain[2], fast[2], strict=True):
            scale = max(float(np.abs(a).max()), 1.0)
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=f"{node}.{name}")
            assert np.abs(a).max() > 0 or node == "static_vectors" and vectors == "none"


def test_batches_of_empty_or_one_token_docs(polarity):
    nlp = pipeline(polarity, PLAIN)
    model = nlp.get_pipe("tok2vec").model
    for words in ([[]], [[], []], [["Hi"]], [["Hi"], []], [[], ["a"], ["b", "c"]]):
        docs = [Doc(nlp.vocab, words=w) for w in words]
        if not any(words):  # (spaCy's Tok2Vec.update returns before its backward)
            plain = [model.predict(docs)]
            install_fast_path(nlp)
            fast = [model.predict(docs)]
        else:
            plain = forward_and_gradients(model, docs, 0.0)
            install_fast_path(nlp)
            fast = forward_and_gradients(model, docs, 0.0)
        remove_fast_path(nlp)
        for a, b in zip(plain[0], fast[0], strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def train_batches(nlp, examples, drop: float, n: int = 6, size: int = 8):
    from spacy.schemas import ConfigSchemaTraining
    from spacy.util import registry

    optimizer = registry.resolve(nlp.config.interpolate()["training"],
                                 schema=ConfigSchemaTraining)["optimizer"]
    losses: dict[str, float] = {}
    for i in range(n):
        batch = examples[i * size : (i + 1) * size]
        nlp.update(batch, drop=drop, sgd=False, losses=losses)
        apply_gradients(nlp, optimizer, ScaledOptimizer(optimizer, 1.0))
    return losses


def all_params(nlp) -> list[np.ndarray]:
    return [node.get_param(name).copy() for _, proc in nlp.pipeline
            for node in proc.model.walk() for name in node.param_names if node.has_param(name)]


@pytest.mark.parametrize("drop", [0.0, 0.2])
def test_the_fast_paths_weights_track_spacys(polarity, glove_like, drop):
    """The same pipeline trained on the plain and the fast forward, several updates: the
    same weights to float tolerance (without dropout, and with it, as the masks are the
    same draws from the ops' stream)."""
    weights, losses = {}, {}
    for name in ("plain", "fast"):
        nlp = pipeline(polarity, STATIC, glove_like, seed=3)
        if name == "fast":
            assert install_fast_path(nlp) is None
        examples = read_examples(nlp, polarity / "train.spacy")
        with using_ops(nlp.get_pipe("tok2vec").model.ops):
            losses[name] = train_batches(nlp, examples, drop)
        weights[name] = all_params(nlp)
    assert losses["plain"].keys() == losses["fast"].keys()
    for key, value in losses["plain"].items():
        assert losses["fast"][key] == pytest.approx(value, rel=1e-4, abs=1e-6)
    for a, b in zip(weights["plain"], weights["fast"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    start = all_params(pipeline(polarity, STATIC, glove_like, seed=3))
    assert not all(np.array_equal(a, b) for a, b in zip(start, weights["fast"], strict=True))


def test_a_parsers_weights_track_spacys_on_ud(tmp_path):
    """The tagger and parser listen to the tok2vec: the same updates on both paths."""
    dev = shared_data("ud_english_ewt", "en_ewt-ud-dev.conllu.gz")
    build_task({"type": "ud", "source": {"format": "conllu", "train": str(dev), "dev": str(dev),
                                          "test": str(dev)},
                "limits": {"train": 40, "dev": 10, "test": 10}}, tmp_path / "ud")
    weights = {}
    for name in ("plain", "fast"):
        nlp = pipeline(tmp_path / "ud", PLAIN, task_type="ud")
        if name == "fast":
            assert install_fast_path(nlp) is None
        train_batches(nlp, read_examples(nlp, tmp_path / "ud" / "train.spacy"), 0.1, n=4,
                      size=10)
        weights[name] = all_params(nlp)
    for a, b in zip(weights["plain"], weights["fast"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def _parser_task(tmp_path, task_type: str):
    if task_type == "ud":
        dev = shared_data("ud_english_ewt", "en_ewt-ud-dev.conllu.gz")
        source = {"format": "conllu", "train": str(dev), "dev": str(dev), "test": str(dev)}
    else:
        testa = shared_data("conll2003", "eng.testa.gz")
        source = {"format": "conll2003", "train": str(testa), "dev": str(testa),
                  "test": str(testa)}
    build_task({"type": task_type, "source": source,
                "limits": {"train": 40, "dev": 10, "test": 10}}, tmp_path / task_type)
    return tmp_path / task_type


def zero_grads(nlp) -> None:
    for _, proc in nlp.pipeline:
        for node in proc.model.walk():
            for name in node.param_names:
                if node.has_grad(name):
                    node.set_grad(name, node.ops.alloc(node.get_grad(name).shape))


@pytest.mark.parametrize("task_type", ["ud", "ner"])
def test_the_parsers_backward_once_per_batch_gives_spacys_gradients(tmp_path, task_type):
    """The parser's lower layer back-propagated once per batch, per token (FastParserForward)
    against spaCy's once per step: the same gradients of every parameter (the lower
    layer's W, bias and padding, the upper layer, the encoder through the tokens'
    gradients) to float tolerance, after two real updates (spaCy's upper layer starts at
    zero, so the first update's lower gradients are zero)."""
    from spacy.util import fix_random_seed

    from lmao.fast_finetune import FastParserForward

    task = _parser_task(tmp_path, task_type)
    nlp = pipeline(task, PLAIN, task_type=task_type)
    examples = read_examples(nlp, task / "train.spacy")[:20]
    parser = nlp.get_pipe("parser" if task_type == "ud" else "ner").model
    with using_ops(nlp.get_pipe("tok2vec").model.ops):
        optimizer = nlp.resume_training()
        for _ in range(2):
            nlp.update(examples, drop=0.0, sgd=optimizer)
        grads = {}
        for name in ("plain", "fast"):
            if name == "fast":
                assert install_fast_path(nlp) is None
                assert isinstance(parser._func, FastParserForward)
            zero_grads(nlp)
            fix_random_seed(7)  # the parser's cut of long documents draws from `random`
            nlp.update(examples, drop=0.0, sgd=False)
            grads[name] = [(node.name, param, node.get_grad(param).copy())
                           for _, proc in nlp.pipeline for node in proc.model.walk()
                           for param in node.param_names if node.has_grad(param)]
        remove_fast_path(nlp)
        assert not isinstance(parser._func, FastParserForward)
    lower = [g for node, _, g in grads["fast"] if node == "precomputable_affine"]
    assert len(lower) == 3 and all(np.abs(g).max() > 0 for g in lower)
    for (node, param, a), (_, _, b) in zip(grads["plain"], grads["fast"], strict=True):
        scale = max(float(np.abs(a).max()), 1.0)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * scale, err_msg=f"{node} {param}")


@Language.component("lmao_test_seen")
def _seen(doc: Doc) -> Doc:
    doc.user_data["seen"] = True
    return doc


@pytest.mark.parametrize("task_type", ["ud", "ner"])
def test_greedy_decoding_predicts_what_spacys_parse_loop_predicts(tmp_path, monkeypatch,
                                                                  task_type):
    """After a few real updates, the fast path's `pipe` (each parser step scored by the
    step model on the model's ops) parses the dev documents exactly as `nlp.pipe` with
    spaCy's C parse loop does: the same heads and labels, the same entities, empty
    documents included; and it did decode them itself."""
    import lmao.fast_finetune as fast

    task = _parser_task(tmp_path, task_type)
    nlp = pipeline(task, PLAIN, task_type=task_type)
    train = read_examples(nlp, task / "train.spacy")
    optimizer = Adam(0.01)  # four passes: enough for the NER model to predict entities
    with using_ops(nlp.get_pipe("tok2vec").model.ops):
        for i in range(0, 4 * len(train), 8):
            nlp.update(train[i % len(train):][:8], drop=0.1, sgd=optimizer)
    references = [eg.reference for eg in read_examples(nlp, task / "dev.spacy")]

    def docs():
        plain = [Doc(nlp.vocab, words=[t.text for t in d]) for d in references]
        return [Doc(nlp.vocab, words=[]), *plain[:7], Doc(nlp.vocab, words=[]), *plain[7:]]

    def annotations(parsed):
        if task_type == "ner":
            return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in parsed]
        return [[(t.head.i, t.dep_, t.tag_) for t in doc] for doc in parsed]

    spacys = annotations(nlp.pipe(docs(), batch_size=4))
    assert install_fast_path(nlp) is None
    nlp.add_pipe("lmao_test_seen")  # a function component, run as spaCy runs it
    assert all(doc.user_data["seen"] for doc in fast.pipe(nlp, docs(), batch_size=4))
    nlp.remove_pipe("lmao_test_seen")
    calls = []
    monkeypatch.setattr(fast, "greedy_parse", lambda p, d: calls.append(len(d)) or
                        greedy_parse(p, d))
    ours = annotations(fast.pipe(nlp, docs(), batch_size=4))
    assert calls and sum(calls) == len(references) + 2
    assert ours == spacys
    assert sum(map(len, ours)) > 0  # something was predicted
    parser = nlp.get_pipe("parser" if task_type == "ud" else "ner").model
    assert parser.get_ref("upper").ops is parser.ops  # the small products on BlasOps
    remove_fast_path(nlp)
    monkeypatch.setattr(fast, "greedy_parse", None)
    assert annotations(fast.pipe(nlp, docs(), batch_size=4)) == spacys  # spaCy's own pipe


def test_a_corpus_parse_on_the_fast_path_gives_spacys_heads(tmp_path, lee_lines):
    """`parse_store` (the head objectives' parse of a corpus) loads a trained parser on
    the fast path: the heads it writes are those of spaCy's own `spacy.load` and
    `nlp.pipe` on the same tokens."""
    from lmao.parse import parse_store
    from lmao.store import TokenStore, build_store, read_heads

    task = _parser_task(tmp_path, "ud")
    nlp = pipeline(task, PLAIN, task_type="ud")
    train = read_examples(nlp, task / "train.spacy")
    optimizer = Adam(0.01)
    with using_ops(nlp.get_pipe("tok2vec").model.ops):
        for i in range(0, 3 * len(train), 8):
            nlp.update(train[i % len(train):][:8], drop=0.1, sgd=optimizer)
    nlp.to_disk(tmp_path / "parser")
    build_store(lee_lines[:40], tmp_path / "store")
    store = TokenStore(tmp_path / "store")
    parse_store(tmp_path / "store", tmp_path / "parser", tmp_path / "parse", batch_size=16)
    ours = np.asarray(read_heads(tmp_path / "parse", store))

    plain = spacy.load(tmp_path / "parser")
    assert fast_path_of(plain.get_pipe("tok2vec").model) is None
    docs = (Doc(plain.vocab, words=store.words(ids)) for ids in store.iter_docs())
    spacys = np.concatenate([[t.head.i - t.i for t in doc]
                             for doc in plain.pipe(docs, batch_size=16)])
    assert len(ours) == store.n_words > 1000
    assert np.count_nonzero(spacys) > 0  # not every token its own head
    np.testing.assert_array_equal(ours, spacys)


@pytest.mark.parametrize("task_type", ["ud", "ner"])
def test_the_compiled_state_vectors_are_spacys_to_the_bit(tmp_path, task_type):
    """A parser step's state vectors (features summed, bias, maxout) from the compiled
    kernel equal spaCy's `precompute_hiddens` bit for bit, on states a few transitions
    into real documents (missing features included), after real updates."""
    from lmao.fast_finetune import _FastStateVectors

    task = _parser_task(tmp_path, task_type)
    nlp = pipeline(task, PLAIN, task_type=task_type)
    train = read_examples(nlp, task / "train.spacy")
    optimizer = Adam(0.01)
    with using_ops(nlp.get_pipe("tok2vec").model.ops):
        for i in range(0, 2 * len(train), 8):
            nlp.update(train[i % len(train):][:8], drop=0.1, sgd=optimizer)
    proc = nlp.get_pipe("parser" if task_type == "ud" else "ner")
    docs = list(nlp.get_pipe("tok2vec").pipe(
        [Doc(nlp.vocab, words=[t.text for t in eg.reference]) for eg in train[:12]]))
    plain = proc.model.predict(docs)
    assert install_fast_path(nlp) is None
    fast = proc.model.predict(docs)
    assert isinstance(fast.state2vec, _FastStateVectors)
    states = [s for s in proc.moves.init_batch(docs) if not s.is_final()]
    checked = 0
    for _ in range(6):
        ids = plain.get_token_ids(states)
        ours, theirs = fast.state2vec(ids, False)[0], plain.state2vec(ids, False)[0]
        np.testing.assert_array_equal(ours, theirs)
        checked += (ids < 0).any() + (ids >= 0).any()
        states = proc.transition_states(states, plain.predict(states))
    assert checked >= 2 and np.abs(ours).max() > 0


def test_a_ner_models_weights_track_spacys(tmp_path):
    """Several updates with dropout on both paths (the encoder's and the parser's fast
    backward): the same weights to float tolerance."""
    task = _parser_task(tmp_path, "ner")
    weights = {}
    for name in ("plain", "fast"):
        nlp = pipeline(task, PLAIN, task_type="ner")
        if name == "fast":
            assert install_fast_path(nlp) is None
        with using_ops(nlp.get_pipe("tok2vec").model.ops):
            train_batches(nlp, read_examples(nlp, task / "train.spacy"), 0.1, n=4, size=10)
        weights[name] = all_params(nlp)
    for a, b in zip(weights["plain"], weights["fast"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_finetune_runs_on_the_fast_path_and_saves_a_plain_spacy_pipeline(polarity, tmp_path,
                                                                          monkeypatch):
    """`finetune` installs the fast path by default; the best pipeline it saves loads with
    `spacy.load` (on spaCy's plain forward) and predicts what the fast path predicts; and
    the run's log equals a run on the plain forward (the same masks, to float tolerance)."""
    import lmao.finetune

    installed = []

    def spy(nlp):
        reason = install_fast_path(nlp)
        installed.append((reason, fast_path_of(nlp.get_pipe("tok2vec").model)))
        return reason

    monkeypatch.setattr(lmao.finetune, "install_fast_path", spy)
    rows = textcat(polarity, tmp_path / "fast.jsonl", {"dropout": 0.2}, epochs=2,
                   best=tmp_path / "best")
    assert installed and installed[0][0] is None and installed[0][1] is not None
    monkeypatch.setattr(lmao.finetune, "install_fast_path", lambda nlp: "off")
    plain = textcat(polarity, tmp_path / "plain.jsonl", {"dropout": 0.2}, epochs=2)
    for a, b in zip(rows, plain, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
        assert a.get("losses") == pytest.approx(b.get("losses"), rel=1e-4)

    loaded = spacy.load(tmp_path / "best")
    model = loaded.get_pipe("tok2vec").model
    assert fast_path_of(model) is None  # nothing of ours in the saved pipeline
    assert "lmao" not in (tmp_path / "best" / "config.cfg").read_text()  # spaCy's own parts
    texts = [eg.reference.text for eg in read_examples(loaded, polarity / "dev.spacy")]
    plain_cats = [doc.cats for doc in loaded.pipe(texts)]
    install_fast_path(loaded)
    assert fast_path_of(model) is not None
    fast_cats = [doc.cats for doc in loaded.pipe(texts)]
    for a, b in zip(plain_cats, fast_cats, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def test_another_architecture_stays_on_the_plain_forward(polarity, tmp_path):
    """A BiLSTM encoder: no fast path (the reason is returned), and `finetune` trains it
    on spaCy's plain forward without a word."""
    bilstm = EncoderSettings(width=16, depth=1, rows=[300, 50, 100, 100], architecture="bilstm")
    nlp = pipeline(polarity, bilstm)
    reason = install_fast_path(nlp)
    assert reason and "window CNN" in reason
    assert fast_path_of(nlp.get_pipe("tok2vec").model) is None
    rows = textcat(polarity, tmp_path / "bilstm.jsonl", epochs=1, encoder=bilstm)
    assert 0 <= rows[0]["scores"]["accuracy"] <= 1
    bow = pipeline(polarity, PLAIN)
    remove_fast_path(bow)  # (nothing to remove)
    assert install_fast_path(spacy.blank("en")) == "no tok2vec component"
