import json
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lmao.encoder import EncoderSettings, build_tok2vec
from lmao.fileio import InputError
from lmao.pretrain import ChangedSettingsError, PretrainSettings, WordStream, pretrain
from lmao.store import TokenStore

TINY = {"width": 16, "depth": 1, "rows": [300, 50, 100, 100]}


def settings(**overrides) -> PretrainSettings:
    values = {"encoder": TINY, "batch_words": 700, "hidden_width": 24, "log_every_words": 1000,
              "save_every_words": 1500, **overrides}
    return PretrainSettings.from_dict(values)


def test_stream_cuts_batches_at_exact_word_counts(lee_store):
    store = TokenStore(lee_store)
    stream = WordStream(store, seed=3, shuffle=True, max_doc_length=50, max_epochs=2)
    sizes = [sum(len(s) for s in stream.take(n)) for n in (1, 999, 12345, 7)]
    assert sizes == [1, 999, 12345, 7]
    assert all(len(s) <= 50 for s in stream.take(5000))
    again = WordStream(store, seed=3, shuffle=True, max_doc_length=50, max_epochs=2)
    again.skip(1 + 999 + 12345 + 7 + 5000)
    assert np.array_equal(np.concatenate(stream.take(300)), np.concatenate(again.take(300)))


def test_checkpoints_fall_on_exact_word_counts(lee_store, lee_vectors, tmp_path):
    paths = pretrain(lee_store, lee_vectors, settings(), [1000, 2500], tmp_path, progress=False)
    assert [p.name for p in paths] == ["words-1000.bin", "words-2500.bin"]
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {1000, 2500} <= {row["words"] for row in log}
    assert log[-1]["words"] == 2500
    assert all(np.isfinite(row["loss"]) and row["loss"] > 0 for row in log)
    assert paths[0].read_bytes() != paths[1].read_bytes()


def test_loss_goes_down(lee_store, lee_vectors, tmp_path):
    pretrain(lee_store, lee_vectors, settings(log_every_words=2000), [20000], tmp_path,
             progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]


def test_resuming_from_a_checkpoint_is_bit_identical(lee_store, lee_vectors, tmp_path):
    straight = pretrain(lee_store, lee_vectors, settings(), [1400, 2800], tmp_path / "a",
                        progress=False)
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path / "b", progress=False)
    resumed = pretrain(lee_store, lee_vectors, settings(), [1400, 2800], tmp_path / "b",
                       progress=False)
    assert resumed[1].read_bytes() == straight[1].read_bytes()


def test_a_state_from_other_settings_is_refused_naming_them(lee_store, lee_vectors, tmp_path):
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path, progress=False)
    changed = settings(learn_rate=0.01, seed=5)
    with pytest.raises(ChangedSettingsError) as refused:
        pretrain(lee_store, lee_vectors, changed, [1400, 2800], tmp_path, progress=False)
    message = str(refused.value)
    assert "words-1400.state" in message
    assert "learn_rate: 0.001 → 0.01" in message and "seed: 0 → 5" in message
    assert "batch_words" not in message  # only what differs


def test_restart_on_changed_settings_trains_from_scratch(lee_store, lee_vectors, tmp_path):
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path / "old", progress=False)
    fresh = pretrain(lee_store, lee_vectors, settings(seed=5), [1400, 2800], tmp_path / "new",
                     progress=False)
    restarted = pretrain(lee_store, lee_vectors,
                         settings(seed=5, on_changed_settings="restart"), [1400, 2800],
                         tmp_path / "old", progress=False)
    assert restarted[1].read_bytes() == fresh[1].read_bytes()


def test_logging_and_saving_intervals_do_not_block_a_resume(lee_store, lee_vectors, tmp_path):
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path, progress=False)
    pretrain(lee_store, lee_vectors, settings(log_every_words=500, save_every_words=900),
             [1400, 2800], tmp_path, progress=False)


def test_a_torn_last_log_line_is_dropped_on_resume(lee_store, lee_vectors, tmp_path, capsys):
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path, progress=False)
    log = tmp_path / "log.jsonl"
    log.write_text(log.read_text() + '{"words": 14')  # a kill mid-write
    pretrain(lee_store, lee_vectors, settings(), [1400, 2800], tmp_path, progress=False)
    assert "dropping a torn last line" in capsys.readouterr().err
    words = [json.loads(line)["words"] for line in log.read_text().splitlines()]
    assert words == sorted(set(words)) and words[-1] == 2800


def test_a_bad_log_line_before_the_last_names_its_line(lee_store, lee_vectors, tmp_path):
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path, progress=False)
    log = tmp_path / "log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(["garbage", *lines]) + "\n")
    with pytest.raises(InputError, match=r"log.jsonl:1: not a log entry"):
        pretrain(lee_store, lee_vectors, settings(), [1400, 2800], tmp_path, progress=False)


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_a_damaged_state_names_the_file(lee_store, lee_vectors, tmp_path, damage):
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path, progress=False)
    state = tmp_path / "words-1400.state"
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"PK\x03\x04zip")
    with pytest.raises(InputError, match=r"words-1400.state: not a readable pre-training"):
        pretrain(lee_store, lee_vectors, settings(), [1400, 2800], tmp_path, progress=False)


def start_pretraining_child(store, vectors, out, save_every_words: int) -> subprocess.Popen:
    """The kill tests' victim: a separate process pre-training to 6,000 words."""
    script = (
        "import sys\n"
        "from lmao.pretrain import pretrain, PretrainSettings, Preempted\n"
        f"s = PretrainSettings.from_dict({{'encoder': {TINY!r}, 'batch_words': 350, "
        f"'hidden_width': 24, 'log_every_words': 1000, 'save_every_words': {save_every_words}}})\n"
        "try:\n"
        f"    pretrain({str(store)!r}, {str(vectors)!r}, s, [6000], {str(out)!r}, "
        "progress=False)\n"
        "except Preempted as stopped:\n"
        "    sys.exit(128 + stopped.signum)\n"
    )
    return subprocess.Popen([sys.executable, "-c", script])


def wait_for(path, child: subprocess.Popen, what: str) -> None:
    deadline = time.time() + 120
    while not path.exists() and child.poll() is None:
        if time.time() > deadline:
            child.kill()
            pytest.fail(f"no {what} was written")
        time.sleep(0.05)


def assert_resumes_bit_identically(store, vectors, out, straight) -> None:
    resumed = pretrain(store, vectors, settings(save_every_words=700, batch_words=350), [6000],
                       out, progress=False)
    assert resumed[0].read_bytes() == straight[0].read_bytes()
    words = [json.loads(line)["words"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert words == sorted(set(words)), "log lines repeated after the resume"


@pytest.fixture(scope="module")
def straight_6000(lee_store, lee_vectors, tmp_path_factory) -> list:
    """The uninterrupted run the kill tests must reproduce."""
    return pretrain(lee_store, lee_vectors, settings(save_every_words=700, batch_words=350),
                    [6000], tmp_path_factory.mktemp("straight"), progress=False)


def test_kill_minus_nine_then_resume_is_bit_identical(lee_store, lee_vectors, tmp_path,
                                                      straight_6000):
    out = tmp_path / "killed"
    child = start_pretraining_child(lee_store, lee_vectors, out, save_every_words=700)
    wait_for(out / "partial.state", child, "periodic state")
    child.kill()  # SIGKILL: no chance to clean up
    child.wait()
    if (out / "words-6000.bin").exists():
        pytest.skip("the child finished before it could be killed")
    assert_resumes_bit_identically(lee_store, lee_vectors, out, straight_6000)


def test_sigterm_saves_the_state_then_resume_is_bit_identical(lee_store, lee_vectors, tmp_path,
                                                             straight_6000):
    """A scheduler's pre-emption: SIGTERM mid-run saves the state at once (no periodic save
    would have happened before 6,000 words) and exits 143; the rerun loses no word."""
    out = tmp_path / "preempted"
    child = start_pretraining_child(lee_store, lee_vectors, out, save_every_words=10**9)
    wait_for(out / "log.jsonl", child, "log")
    while child.poll() is None and not (out / "log.jsonl").read_text().strip():
        time.sleep(0.02)  # wait for real progress: the first log line, at 1,000 words
    child.send_signal(signal.SIGTERM)
    returncode = child.wait()
    if (out / "words-6000.bin").exists():
        pytest.skip("the child finished before it could be stopped")
    assert returncode == 128 + signal.SIGTERM
    state = pickle.loads((out / "partial.state").read_bytes())
    assert 1000 <= state["words"] < 6000
    assert_resumes_bit_identically(lee_store, lee_vectors, out, straight_6000)


def test_checkpoint_is_spacy_tok2vec_bytes(lee_store, lee_vectors, tmp_path):
    [path] = pretrain(lee_store, lee_vectors, settings(), [700], tmp_path, progress=False)
    model = build_tok2vec(EncoderSettings.from_dict(TINY))
    model.from_bytes(path.read_bytes())  # raises if the architecture does not match


def test_checkpoint_beyond_the_corpus_is_refused(lee_store, lee_vectors, tmp_path):
    with pytest.raises(ValueError, match="max_epochs"):
        pretrain(lee_store, lee_vectors, settings(max_epochs=1), [10**9], tmp_path,
                 progress=False)


def test_fast_engine_trains_like_the_doc_engine(lee_store, lee_vectors, tmp_path):
    """Without dropout (whose masks differ in shape when fewer rows are computed) the fast
    engine's weights track the plain spaCy model's."""
    from thinc.api import Model

    runs = {}
    for engine in ("fast", "docs"):
        path = pretrain(lee_store, lee_vectors, settings(engine=engine, dropout=0.0), [2100],
                        tmp_path / engine, progress=False)[0]
        model = build_tok2vec(EncoderSettings.from_dict(TINY))
        model.initialize()
        runs[engine] = model.from_bytes(path.read_bytes())
    pairs = zip(runs["fast"].walk(), runs["docs"].walk(), strict=True)
    compared = 0
    for fast, docs in pairs:
        for name in fast.param_names:
            if fast.has_param(name) and docs.has_param(name):
                assert np.allclose(fast.get_param(name), docs.get_param(name), atol=2e-5), name
                compared += 1
    assert compared > 10 and isinstance(runs["fast"], Model)


@pytest.mark.parametrize("window_size", [1, 2])
def test_computing_only_the_needed_rows_gives_the_full_gradients(lee_store, window_size):
    """The fast engine runs each window layer only on the rows the trained tokens depend
    on; outputs and parameter gradients must equal computing every row."""
    from lmao.pretrain import FastTok2Vec, TypeFeatures, input_vocab

    store = TokenStore(lee_store)
    encoder = EncoderSettings.from_dict({**TINY, "depth": 3, "window_size": window_size})
    tok2vec = build_tok2vec(encoder)
    tok2vec.initialize()
    fast = FastTok2Vec(tok2vec, TypeFeatures(store.types, encoder.attrs, input_vocab()))
    assert fast.blocks is not None and len(fast.blocks) == 3
    rng = np.random.default_rng(0)
    lengths = [1, 17, 40, 3, 25]
    ids = np.asarray(store.tokens[: sum(lengths)])
    trained = np.sort(rng.choice(sum(lengths), 12, replace=False))
    d_rows = rng.normal(size=(len(trained), encoder.width)).astype("float32")

    def run(method) -> tuple[np.ndarray, list[np.ndarray]]:  # noqa: ANN001
        for node in tok2vec.walk():
            for name in node.grad_names:
                node.set_grad(name, np.zeros_like(node.get_grad(name)))
        rows, backprop = method(fast.features(ids), lengths, trained)
        backprop(d_rows)
        grads = [node.get_grad(n).copy() for node in tok2vec.walk() for n in node.grad_names]
        return rows, grads

    needed_rows, needed_grads = run(fast._needed_only)
    dense_rows, dense_grads = run(fast._dense)
    assert np.allclose(needed_rows, dense_rows, atol=1e-5)
    assert len(dense_grads) > 10 and any(np.abs(g).sum() > 0 for g in dense_grads)
    for needed, dense in zip(needed_grads, dense_grads, strict=True):
        # sums over other numbers of rows, in another order: float32 rounding scales with
        # the largest value (a wrong neighbourhood differs by whole units)
        scale = max(1.0, float(np.abs(dense).max()))
        assert np.allclose(needed, dense, rtol=1e-4, atol=1e-5 * scale)


def test_gpu_run_tracks_the_cpu_run(lee_store, lee_vectors, tmp_path):
    cupy = pytest.importorskip("cupy", reason="GPU test: needs cupy")
    if cupy.cuda.runtime.getDeviceCount() == 0:
        pytest.skip("GPU test: no GPU visible")
    cpu = pretrain(lee_store, lee_vectors, settings(), [3000], tmp_path / "cpu", progress=False)
    gpu = pretrain(lee_store, lee_vectors, settings(), [3000], tmp_path / "gpu", progress=False,
                   gpu_id=0)
    from thinc.api import use_ops

    with use_ops("numpy"):
        a, b = (build_tok2vec(EncoderSettings.from_dict(TINY)) for _ in range(2))
        a.from_bytes(cpu[0].read_bytes())
        b.from_bytes(gpu[0].read_bytes())
        for node_a, node_b in zip(a.walk(), b.walk(), strict=True):
            for name in node_a.param_names:
                if node_a.has_param(name):
                    np.testing.assert_allclose(node_a.get_param(name), node_b.get_param(name),
                                               atol=5e-3)


def test_trigram_targets_are_neighbours_within_a_segment():
    from lmao.pretrain import VectorObjective

    table = np.arange(12, dtype="float32").reshape(4, 3)  # rows 0..3
    rows_by_type = np.array([0, 1, 2, 3, -1])  # type 4 has no vector
    objective = VectorObjective(table, rows_by_type, "L2", "trigram")
    ids = np.array([0, 1, 2, 3, 4, 1])
    rows = objective.target_rows(ids, [3, 3])
    assert rows.tolist() == [[-1, 0, 1], [0, 1, 2], [1, 2, -1],
                             [-1, 3, -1], [3, -1, 1], [-1, 1, -1]]
    prediction = np.zeros((6, 9), dtype="float32")
    grad, loss, known = objective(ids, [3, 3], prediction)
    assert known.sum() == 5 and loss[4] == 0
    assert np.all(grad[4] == 0)  # no target for a token without a vector
    assert np.all(grad[0, :3] == 0) and np.any(grad[0, 3:] != 0)  # no left neighbour
    assert objective.width == 9


def test_trigram_run_checkpoints_load_into_spacy(lee_store, lee_vectors, tmp_path):
    [path] = pretrain(lee_store, lee_vectors, settings(objective="trigram"), [1400], tmp_path,
                      progress=False)
    model = build_tok2vec(EncoderSettings.from_dict(TINY))
    model.from_bytes(path.read_bytes())


def test_head_targets_follow_the_parse_within_a_segment():
    from lmao.pretrain import VectorObjective

    table = np.arange(12, dtype="float32").reshape(4, 3)
    objective = VectorObjective(table, np.array([0, 1, 2, 3]), "cosine", "head_word")
    ids = np.array([0, 1, 2, 3, 1])
    heads = np.array([1, 0, -1, 2, -4])  # 3 points past the batch, 4 into another segment
    rows = objective.target_rows(ids, [3, 2], heads)
    assert rows.tolist() == [[1, 0], [1, 1], [1, 2], [-1, 3], [-1, 1]]
    with pytest.raises(ValueError, match="parse"):
        objective.target_rows(ids, [3, 2])
    assert objective.width == 6 and objective.needs_heads


def test_bilstm_next_and_previous_word_objective(lee_store, lee_vectors, tmp_path):
    spec = {**TINY, "architecture": "bilstm", "max_length": 40}
    run = settings(encoder=spec, objective="next_prev", log_every_words=700)
    assert run.mask_prob == 0.0  # the predicted words are never in view, nothing to mask
    [path] = pretrain(lee_store, lee_vectors, run, [4200], tmp_path, progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    model = build_tok2vec(EncoderSettings.from_dict(spec))
    model.from_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="bilstm"):
        settings(objective="next_prev")


def test_input_features_tell_words_apart(lee_store):
    """The encoder's inputs: NORM, PREFIX, SUFFIX and SHAPE as spaCy's English pipeline
    computes them, different for different words; a bare Vocab (all 0) is refused."""
    from spacy.vocab import Vocab

    from lmao.pretrain import TypeFeatures, input_vocab

    types = TokenStore(lee_store).types[:500]
    keys = TypeFeatures(types, ["NORM", "PREFIX", "SUFFIX", "SHAPE"], input_vocab())(
        np.arange(len(types)))
    assert len({tuple(row) for row in keys}) == len(types)
    assert len(set(keys[:, 3])) > 5  # shapes: Xxxx, dd, x'x, ...
    with pytest.raises(ValueError, match="attribute"):
        TypeFeatures(types, ["NORM"], Vocab())


@pytest.mark.parametrize("loss", ["cosine", "L2"])
def test_output_on_trained_tokens_only_gives_the_full_gradients(loss):
    """Running the output layer on the masked tokens only must give the encoder exactly
    the gradients of running it on every token and zeroing the others' (spaCy's way)."""
    from thinc.api import NumpyOps

    from lmao.pretrain import VectorObjective, output_layer, update_output

    rng = np.random.default_rng(0)
    lengths = [5, 9, 6]
    table = rng.normal(size=(4, 8)).astype("float32")
    objective = VectorObjective(table, np.array([0, 1, -1, 2, 3]), loss)
    ids = rng.integers(0, 5, sum(lengths))
    encoded = [rng.normal(size=(n, 12)).astype("float32") for n in lengths]
    trained = np.array([1, 4, 7, 8, 15, 19])
    output = output_layer(settings(loss=loss), objective.width)
    output.initialize(X=np.concatenate(encoded))
    linear = output.layers[-1]  # zero-initialised: give it weights so gradients flow
    linear.set_param("W", rng.normal(size=linear.get_param("W").shape).astype("float32"))

    flat = NumpyOps().flatten(encoded)
    d_rows, token_loss, known = update_output(output, objective, flat[trained], ids, lengths,
                                              trained)

    prediction, backprop = output.begin_update(flat)
    d_pred, full_loss, full_known = objective(ids, lengths, prediction)
    mask = np.zeros((len(flat), 1), dtype="float32")
    mask[trained] = 1
    expected = backprop(d_pred * mask)
    assert np.allclose(d_rows, expected[trained], atol=1e-6)
    untrained = np.setdiff1d(np.arange(len(flat)), trained)
    assert np.abs(expected[trained]).sum() > 0 and not expected[untrained].any()
    assert np.allclose(token_loss, full_loss[trained], atol=1e-6)
    assert np.array_equal(known, full_known[trained])
