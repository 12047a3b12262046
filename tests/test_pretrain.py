import json
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lmao.encoder import build_tok2vec
from lmao.fileio import InputError
from lmao.pretrain import ChangedSettingsError, PretrainSettings, WordStream, pretrain
from lmao.settings import EncoderSettings
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


# Long enough that the child cannot finish between the moment a test sees it working and
# the signal (6,000 words sometimes did, and the test then skipped).
KILL_RUN_WORDS = 20_000


def start_pretraining_child(store, vectors, out, save_every_words: int) -> subprocess.Popen:
    """The kill tests' victim: a separate process pre-training to KILL_RUN_WORDS words."""
    script = (
        "import sys\n"
        "from lmao.pretrain import pretrain, PretrainSettings, Preempted\n"
        f"s = PretrainSettings.from_dict({{'encoder': {TINY!r}, 'batch_words': 350, "
        f"'hidden_width': 24, 'log_every_words': 1000, 'save_every_words': {save_every_words}}})\n"
        "try:\n"
        f"    pretrain({str(store)!r}, {str(vectors)!r}, s, [{KILL_RUN_WORDS}], {str(out)!r}, "
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
    resumed = pretrain(store, vectors, settings(save_every_words=700, batch_words=350),
                       [KILL_RUN_WORDS], out, progress=False)
    assert resumed[0].read_bytes() == straight[0].read_bytes()
    words = [json.loads(line)["words"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert words == sorted(set(words)), "log lines repeated after the resume"


@pytest.fixture(scope="module")
def straight_run(lee_store, lee_vectors, tmp_path_factory) -> list:
    """The uninterrupted run the kill tests must reproduce."""
    return pretrain(lee_store, lee_vectors, settings(save_every_words=700, batch_words=350),
                    [KILL_RUN_WORDS], tmp_path_factory.mktemp("straight"), progress=False)


def test_kill_minus_nine_then_resume_is_bit_identical(lee_store, lee_vectors, tmp_path,
                                                      straight_run):
    out = tmp_path / "killed"
    child = start_pretraining_child(lee_store, lee_vectors, out, save_every_words=700)
    wait_for(out / "partial.state", child, "periodic state")
    child.kill()  # SIGKILL: no chance to clean up
    child.wait()
    if (out / f"words-{KILL_RUN_WORDS}.bin").exists():
        pytest.skip("the child finished before it could be killed")
    assert_resumes_bit_identically(lee_store, lee_vectors, out, straight_run)


def test_sigterm_saves_the_state_then_resume_is_bit_identical(lee_store, lee_vectors, tmp_path,
                                                             straight_run):
    """A scheduler's pre-emption: SIGTERM mid-run saves the state at once (no periodic save
    would have happened before the end) and exits 143; the rerun loses no word."""
    out = tmp_path / "preempted"
    child = start_pretraining_child(lee_store, lee_vectors, out, save_every_words=10**9)
    wait_for(out / "log.jsonl", child, "log")
    while child.poll() is None and not (out / "log.jsonl").read_text().strip():
        time.sleep(0.02)  # wait for real progress: the first log line, at 1,000 words
    child.send_signal(signal.SIGTERM)
    returncode = child.wait()
    if (out / f"words-{KILL_RUN_WORDS}.bin").exists():
        pytest.skip("the child finished before it could be stopped")
    assert returncode == 128 + signal.SIGTERM
    state = pickle.loads((out / "partial.state").read_bytes())
    assert 1000 <= state["words"] < KILL_RUN_WORDS
    assert_resumes_bit_identically(lee_store, lee_vectors, out, straight_run)


def test_checkpoint_is_spacy_tok2vec_bytes(lee_store, lee_vectors, tmp_path):
    [path] = pretrain(lee_store, lee_vectors, settings(), [700], tmp_path, progress=False)
    model = build_tok2vec(EncoderSettings.from_dict(TINY))
    model.from_bytes(path.read_bytes())  # raises if the architecture does not match


def test_checkpoint_beyond_the_corpus_is_refused(lee_store, lee_vectors, tmp_path):
    with pytest.raises(ValueError, match="max_epochs"):
        pretrain(lee_store, lee_vectors, settings(max_epochs=1), [10**9], tmp_path,
                 progress=False)


def checkpoint_params(path) -> list[dict[str, np.ndarray]]:
    """The parameters of each node of a checkpoint (thinc's msgpack), without building it."""
    import srsly

    return srsly.msgpack_loads(path.read_bytes())["params"]


def checkpoint_nodes(path) -> list[str]:
    import srsly

    return [node["name"] for node in srsly.msgpack_loads(path.read_bytes())["nodes"]]


@pytest.mark.parametrize("static_vectors", [False, True])
def test_fast_engine_trains_like_the_doc_engine(lee_store, lee_vectors, tmp_path,
                                                static_vectors):
    """Without dropout (whose masks differ in shape when fewer rows are computed) the fast
    engine's weights track the plain spaCy model's, static-vector input included."""
    encoder = {**TINY, "include_static_vectors": static_vectors}
    runs = {}
    for engine in ("fast", "docs"):
        path = pretrain(lee_store, lee_vectors,
                        settings(engine=engine, dropout=0.0, encoder=encoder), [2100],
                        tmp_path / engine, progress=False)[0]
        log = [json.loads(line) for line in (tmp_path / engine / "log.jsonl").open()]
        assert {row["engine"] for row in log} == {engine}
        runs[engine] = checkpoint_params(path)
        nodes = checkpoint_nodes(path)
    compared = 0
    for fast, docs, node in zip(runs["fast"], runs["docs"], nodes, strict=True):
        for name, value in fast.items():
            if node == "static_vectors":  # spaCy's gradient is off for words without vector
                continue  # (see FastTok2Vec); the layer test compares it where it is exact
            assert np.allclose(value, docs[name], atol=2e-5), name
            compared += 1
    assert compared > 10
    shapes = [value.shape for node in runs["fast"] for value in node.values()]
    assert ((TINY["width"], 16) in shapes) == static_vectors  # the vectors' projection


def static_vectors_vocab(mode: str, lee_vectors):
    """An input vocab with a plain table (the Lee floret words) or a floret-mode table."""
    from spacy.vectors import Vectors

    from lmao.pretrain import input_vocab
    from lmao.vectors import load_table

    vocab = input_vocab()
    if mode == "default":
        vocab.vectors = load_table(lee_vectors)
    else:
        data = np.random.default_rng(0).normal(size=(300, 16)).astype("float32")
        vocab.vectors = Vectors(strings=vocab.strings, mode="floret", data=data, minn=3,
                                maxn=5, hash_count=2)
    return vocab


@pytest.mark.parametrize("mode", ["default", "floret"])
def test_fast_embedding_with_static_vectors_equals_spacys(lee_store, lee_vectors, mode):
    """Per-type keys and vectors gathered by id give what MultiHashEmbed computes from a
    Doc of the same words, [MASK] and words without a vector included."""
    from spacy.tokens import Doc

    from lmao.pretrain import MASK_WORD, FastTok2Vec, TypeFeatures, TypeVectors

    store = TokenStore(lee_store)
    vocab = static_vectors_vocab(mode, lee_vectors)
    encoder = EncoderSettings.from_dict({**TINY, "include_static_vectors": True})
    tok2vec = build_tok2vec(encoder)
    tok2vec.initialize(X=[Doc(vocab, words=["a", "b"])])
    input_types = [*store.types, MASK_WORD]
    ids = np.asarray(store.tokens[:400]).copy()
    ids[::7] = len(store.types)  # [MASK]
    missing = [i for i, word in enumerate(store.types) if word not in vocab.vectors]
    if mode == "default":
        assert missing, "the test needs words without a vector"
        ids[3] = missing[0]
    if mode == "default":  # spaCy's backprop multiplies a word without a vector by the
        vocab.vectors.data[-1] = 0  # table's last row (V[-1]); make that row 0 to compare

    def gradients(backprop, d_mixed):
        for node in tok2vec.walk():
            for name in node.grad_names:
                node.set_grad(name, np.zeros_like(node.get_grad(name)))
        backprop(d_mixed)
        return [node.get_grad(n).copy() for node in tok2vec.walk() for n in node.grad_names]

    fast = FastTok2Vec(tok2vec, TypeFeatures(input_types, encoder.attrs, vocab),
                       TypeVectors(input_types, vocab))
    mixed, bp_fast = fast._embed(ids)
    expected, bp_spacy = tok2vec.get_ref("embed").begin_update(
        [Doc(vocab, words=[input_types[i] for i in ids])])
    assert np.allclose(mixed, expected[0], atol=1e-5)
    d_mixed = np.random.default_rng(1).normal(size=mixed.shape).astype("float32")
    fast_grads, spacy_grads = gradients(bp_fast, d_mixed), gradients(bp_spacy, [d_mixed])
    assert len(fast_grads) > 5 and all(np.abs(g).sum() > 0 for g in fast_grads)
    for ours, theirs in zip(fast_grads, spacy_grads, strict=True):
        assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("window_size", "static_vectors"), [(1, False), (2, False), (1, True)])
def test_computing_only_the_needed_rows_gives_the_full_gradients(lee_store, lee_vectors,
                                                                 window_size, static_vectors):
    """The fast engine runs each window layer only on the rows the trained tokens depend
    on; outputs and parameter gradients must equal computing every row."""
    from spacy.tokens import Doc

    from lmao.pretrain import FastTok2Vec, TypeFeatures, TypeVectors

    store = TokenStore(lee_store)
    vocab = static_vectors_vocab("default", lee_vectors)
    encoder = EncoderSettings.from_dict({**TINY, "depth": 3, "window_size": window_size,
                                         "include_static_vectors": static_vectors})
    tok2vec = build_tok2vec(encoder)
    tok2vec.initialize(X=[Doc(vocab, words=["a", "b"])])
    fast = FastTok2Vec(tok2vec, TypeFeatures(store.types, encoder.attrs, vocab),
                       TypeVectors(store.types, vocab) if static_vectors else None)
    assert fast.blocks is not None and len(fast.blocks) == 3
    rng = np.random.default_rng(0)
    lengths = [1, 17, 40, 3, 25]
    ids = np.asarray(store.tokens[: sum(lengths)])
    trained = np.sort(rng.choice(sum(lengths), 12, replace=False))
    d_rows = rng.normal(size=(len(trained), encoder.width)).astype("float32")

    def run(method) -> tuple[np.ndarray, list[np.ndarray]]:
        for node in tok2vec.walk():
            for name in node.grad_names:
                node.set_grad(name, np.zeros_like(node.get_grad(name)))
        rows, backprop = method(ids, lengths, trained)
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


def test_a_fall_back_to_the_doc_engine_is_named_in_the_log(lee_store, lee_vectors, tmp_path,
                                                          monkeypatch, capsys):
    from lmao.pretrain import engines

    def refuse(embed):
        raise engines.NoFastPath("a layer it does not know")

    monkeypatch.setattr(engines.EmbedLayers, "of", staticmethod(refuse))
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path, progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").open()]
    assert log and {row["engine"] for row in log} == {"docs"}
    assert all("a layer it does not know" in row["engine_note"] for row in log)
    assert "running the Doc engine" in capsys.readouterr().err


def host_only(value) -> bool:
    if isinstance(value, dict):
        return all(host_only(k) and host_only(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(host_only(item) for item in value)
    return value is None or isinstance(value, (int, float, str, bytes, np.ndarray, np.generic))


def test_a_state_holds_host_data_only(lee_store, lee_vectors, tmp_path):
    """What a state pickles must load where there is no GPU library at all."""
    pretrain(lee_store, lee_vectors, settings(), [1400], tmp_path, progress=False)
    state = pickle.loads((tmp_path / "words-1400.state").read_bytes())
    assert host_only(state) and state["optimizer"]["mom1"] and state["ops_random"]
    script = ("import pickle, sys\n"
              "sys.modules['cupy'] = None  # importing cupy now fails\n"
              f"pickle.loads(open({str(tmp_path / 'words-1400.state')!r}, 'rb').read())\n")
    subprocess.run([sys.executable, "-c", script], check=True)


class FakeDeviceArray:
    """What `to_host` must convert: an array that lives elsewhere and has `.get()`."""

    def __init__(self, array: np.ndarray):
        self.array, self.shape = array, array.shape

    def get(self) -> np.ndarray:
        return self.array


def test_device_arrays_come_home_and_go_back_on_load():
    from thinc.api import Adam, Linear, NumpyOps

    from lmao.ops import optimizer_state, restore_optimizer
    from lmao.pretrain import to_host

    model = Linear(3, 2)
    model.initialize()
    optimizer = Adam(0.001)
    for node in model.walk():
        for name in node.param_names:
            key = (node.id, name)
            optimizer.mom1[key] = FakeDeviceArray(np.full(node.get_param(name).shape, 0.5))
            optimizer.nr_update[key] = 3
    saved = optimizer_state(list(model.walk()), optimizer)
    assert host_only(saved) and len(saved["mom1"]) == 2
    assert all(type(v) is np.ndarray for v in saved["mom1"].values())
    assert host_only(to_host({"a": [FakeDeviceArray(np.zeros(2)), 1], "b": (2.0, "x")}))
    fresh = Adam(0.001)
    restore_optimizer(list(model.walk()), fresh, saved, NumpyOps())
    assert {k[1] for k in fresh.mom1} == {"W", "b"}
    assert all(np.all(v == 0.5) for v in fresh.mom1.values())


def test_a_dropout_stream_resumes_only_on_the_ops_that_saved_it():
    from lmao.ops import BlasOps, random_state, set_random_state

    ops = BlasOps(seed=3)
    ops.get_dropout_mask((10,), 0.5)
    saved = random_state(ops)
    expected = ops.get_dropout_mask((10,), 0.5)
    other = BlasOps(seed=99)
    assert set_random_state(other, saved)
    assert np.array_equal(other.get_dropout_mask((10,), 0.5), expected)
    assert not set_random_state(other, {"kind": "gpu", "seed": 1, "masks_drawn": 4})
    assert not set_random_state(other, None)


def test_gpu_run_tracks_the_cpu_run_and_its_states_move_between_devices(lee_store, lee_vectors,
                                                                        tmp_path):
    """Same data, same masks, no dropout: the GPU's losses within 1% of the CPU's and its
    weights within a tolerance 10× smaller than how far they move in the second half (a
    broken gradient cannot pass). A state saved on the GPU resumes on the CPU, and a GPU
    run with dropout resumes its dropout stream."""
    cupy = pytest.importorskip("cupy", reason="GPU test: needs cupy")
    if cupy.cuda.runtime.getDeviceCount() == 0:
        pytest.skip("GPU test: no GPU visible")
    plain = settings(dropout=0.0, log_every_words=700)
    cpu = pretrain(lee_store, lee_vectors, plain, [2800, 5600], tmp_path / "cpu", progress=False)
    gpu = pretrain(lee_store, lee_vectors, plain, [2800, 5600], tmp_path / "gpu", progress=False,
                   gpu_id=0)
    losses = {name: [json.loads(line)["loss"] for line in (tmp_path / name / "log.jsonl").open()]
              for name in ("cpu", "gpu")}
    assert len(losses["gpu"]) == 8
    np.testing.assert_allclose(losses["gpu"], losses["cpu"], rtol=0.01)

    def max_difference(a, b) -> float:
        return max(float(np.abs(x[k] - y[k]).max())
                   for x, y in zip(checkpoint_params(a), checkpoint_params(b), strict=True)
                   for k in x)

    tolerance = 2e-4
    assert max_difference(cpu[1], gpu[1]) < tolerance
    assert max_difference(cpu[0], cpu[1]) > 10 * tolerance

    moved = tmp_path / "gpu_then_cpu"  # the GPU's 2,800-word state, continued on the CPU
    moved.mkdir()
    for name in ("words-2800.state", "log.jsonl"):
        (moved / name).write_bytes((tmp_path / "gpu" / name).read_bytes())
    state = pickle.loads((moved / "words-2800.state").read_bytes())
    assert host_only(state) and state["ops_random"]["kind"] == "gpu"
    continued = pretrain(lee_store, lee_vectors, plain, [2800, 5600], moved, progress=False)
    assert max_difference(continued[1], cpu[1]) < tolerance

    dropout = settings(dropout=0.2)
    straight = pretrain(lee_store, lee_vectors, dropout, [1400, 2800], tmp_path / "a",
                        progress=False, gpu_id=0)
    pretrain(lee_store, lee_vectors, dropout, [1400], tmp_path / "b", progress=False, gpu_id=0)
    resumed = pretrain(lee_store, lee_vectors, dropout, [1400, 2800], tmp_path / "b",
                       progress=False, gpu_id=0)
    # the dropout stream continues exactly; the sums of cupy's scatter-adds (atomics) are
    # not bit-reproducible on a GPU, even between two straight runs
    assert max_difference(resumed[1], straight[1]) < 1e-5


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


def test_whole_array_maxout_equals_thincs():
    """The GPU ops' maxout (written with array operations, checked here with numpy) gives
    thinc's values, indices and gradients, ties included."""
    from thinc.api import NumpyOps

    from lmao.ops import backprop_maxout, maxout

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7, 3)).astype("float32")
    X[0, 0] = [1.0, 1.0, 0.5]  # a tie: the first piece wins
    best, which = maxout(np, X)
    thinc_best, thinc_which = NumpyOps().maxout(X)
    assert which.dtype == np.int32 and np.array_equal(which, thinc_which)
    assert np.array_equal(best, thinc_best)
    dY = rng.normal(size=(50, 7)).astype("float32")
    assert np.array_equal(backprop_maxout(np, dY, which, 3),
                          NumpyOps().backprop_maxout(dY, which, 3))



def test_masked_tokens_without_a_target_are_left_out_with_the_same_update(
        lee_store, tmp_path, monkeypatch):
    """Half the types have no target vector: the engine computes only the masked tokens
    that have one, and (without dropout) trains the very weights it trains when it computes
    them all."""
    from lmao.pretrain import loop
    from lmao.vectors import save_table

    kept = TokenStore(lee_store).types[::2]
    rng = np.random.default_rng(0)
    save_table(kept, rng.normal(size=(len(kept), 8)).astype("float32"), tmp_path / "half")
    build, left_out = loop.PretrainRun.build.__func__, []

    def run(name: str, every_type_has_a_target: bool) -> list[dict]:
        def built(cls, *args, **kwargs):
            made = build(cls, *args, **kwargs)
            if every_type_has_a_target:  # then every masked token is computed
                made.has_target[:] = True
            left_out.append(int((~made.has_target).sum()))
            return made

        monkeypatch.setattr(loop.PretrainRun, "build", classmethod(built))
        path = pretrain(lee_store, tmp_path / "half",
                        settings(dropout=0.0, target_lookup="exact"), [2100],
                        tmp_path / name, progress=False)[0]
        return checkpoint_params(path)

    filtered, every = run("filtered", False), run("all", True)
    assert left_out[0] > 1000 and left_out[1] == 0
    compared = 0
    for node_filtered, node_every in zip(filtered, every, strict=True):
        for name, value in node_filtered.items():
            assert np.allclose(value, node_every[name], atol=1e-6), name
            compared += 1
    assert compared > 10
