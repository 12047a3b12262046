"""LMAO pre-training: teach the CNN encoder to predict each token's static vector.

One function, `pretrain`, turns (token store, vector table, settings, checkpoint word
counts) into spaCy-loadable checkpoint files. The stream of words is deterministic given the
seed, checkpoints fall on exact word counts, and the full training state is saved with
each checkpoint so a killed run resumes where it stopped, bit for bit.
"""

from __future__ import annotations

import json
import pickle
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from spacy.tokens import Doc
from spacy.vocab import Vocab
from thinc.api import (
    Adam,
    CosineDistance,
    L2Distance,
    Linear,
    Maxout,
    Model,
    Ops,
    Optimizer,
    chain,
    concatenate,
    fix_random_seed,
    get_array_module,
    get_current_ops,
    list2array,
    require_gpu,
    set_dropout_rate,
    zero_init,
)
from tqdm import tqdm

from .encoder import EncoderSettings, build_tok2vec
from .fileio import InputError, append_jsonl, write_bytes, write_text
from .ops import BlasOps, using_ops
from .store import TokenStore, read_heads
from .vectors import load_table, targets_for_types

OBJECTIVE_COLUMNS: dict[str, tuple] = {  # what each token predicts, left to right
    "own_word": (0,),
    "trigram": (-1, 0, 1),
    "head": ("head",),
    "head_word": ("head", 0),
    "next_prev": (1, -1),  # BiLSTM only: left-to-right half → next, right-to-left → previous
}
OBJECTIVES = tuple(OBJECTIVE_COLUMNS)
LOSSES = ("cosine", "L2")
MASK_WORD = "[MASK]"
ENGINES = ("fast", "docs")  # token ids through spaCy's layers, or Docs through the model


@dataclass(frozen=True)
class PretrainSettings:
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    objective: str = "own_word"
    loss: str = "cosine"
    hidden_width: int = 300
    batch_words: int = 3000
    max_doc_length: int = 500
    learn_rate: float = 0.001
    dropout: float = 0.2
    seed: int = 0
    shuffle: bool = True
    max_epochs: int = 100
    log_every_words: int = 20000
    engine: str = "fast"
    mask_prob: float = 0.15
    L2: float = 0.01
    grad_clip: float = 1.0
    target_lookup: str = "lowercase"  # "exact": the exact form only, as spaCy pretrain does
    save_every_words: int = 1_000_000
    # A saved state whose fingerprint differs from this run's: "error" refuses to resume
    # from it (naming what differs); "restart" ignores it (and every other such state).
    on_changed_settings: str = "error"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainSettings:
        data = dict(data)
        encoder = EncoderSettings.from_dict(data.pop("encoder", None))
        settings = cls(encoder=encoder, **data)
        if settings.objective not in OBJECTIVES:
            raise ValueError(f"objective {settings.objective!r}: expected one of {OBJECTIVES}")
        if settings.engine not in ENGINES:
            raise ValueError(f"engine {settings.engine!r}: expected one of {ENGINES}")
        if settings.objective == "next_prev":
            if settings.encoder.architecture != "bilstm":
                raise ValueError("objective 'next_prev' needs the bilstm encoder")
            settings = replace(settings, mask_prob=0.0)  # the predicted word is never seen
        if settings.engine == "fast" and settings.encoder.include_static_vectors:
            settings = replace(settings, engine="docs")  # the fast path embeds no vectors
        if settings.target_lookup not in ("exact", "lowercase"):
            raise ValueError(f"target_lookup {settings.target_lookup!r}: expected exact/lowercase")
        if settings.on_changed_settings not in ("error", "restart"):
            raise ValueError(f"on_changed_settings {settings.on_changed_settings!r}: expected "
                             "error/restart")
        if settings.loss not in LOSSES:
            raise ValueError(f"loss {settings.loss!r}: expected one of {LOSSES}")
        return settings


class WordStream:
    """Deterministic stream of segments of a store, cut at exact word counts.

    A segment is a `range` of token positions in the store. Each epoch visits the documents
    once (in a seeded order when `shuffle`), splitting documents longer than
    `max_doc_length`. `take(n)` returns segments with exactly `min(n, words left)` words,
    splitting a segment where needed, so batches can end on a checkpoint boundary.
    """

    def __init__(self, store: TokenStore, seed: int, shuffle: bool, max_doc_length: int,
                 max_epochs: int):
        self.store = store
        self.seed = seed
        self.shuffle = shuffle
        self.max_doc_length = max_doc_length
        self.max_epochs = max_epochs
        self._segments = self._iter_segments()
        self._pending: range | None = None

    def _iter_segments(self) -> Iterator[range]:
        starts = np.asarray(self.store.doc_starts)
        for epoch in range(self.max_epochs):
            order = np.arange(self.store.n_docs)
            if self.shuffle:
                np.random.default_rng([self.seed, epoch]).shuffle(order)
            for i in order:
                start, stop = int(starts[i]), int(starts[i + 1])
                for j in range(start, stop, self.max_doc_length):
                    yield range(j, min(j + self.max_doc_length, stop))

    def gather(self, array: np.ndarray, segments: list[range]) -> np.ndarray:
        """`array` (one value per store token) at the segments' positions, concatenated."""
        return np.concatenate([np.asarray(array[s.start : s.stop]) for s in segments])

    def take(self, n_words: int) -> list[range]:
        batch: list[range] = []
        need = n_words
        while need > 0:
            seg = self._pending if self._pending is not None else next(self._segments, None)
            self._pending = None
            if seg is None:
                break
            if len(seg) > need:
                seg, self._pending = seg[:need], seg[need:]
            batch.append(seg)
            need -= len(seg)
        return batch

    def skip(self, n_words: int) -> None:
        while n_words > 0:
            taken = sum(len(s) for s in self.take(min(n_words, 100_000)))
            if taken == 0:
                raise RuntimeError("the stream ended before the resume position")
            n_words -= taken


class VectorObjective:
    """Targets and loss of the vector objectives.

    `own_word` predicts each token's vector; `trigram` the concatenated vectors of tokens
    i-1, i, i+1; `head` the vector of the token's syntactic head (from a parse of the
    corpus); `head_word` the head's vector and then its own. Missing neighbours (beyond a
    segment's edge, or words without a vector) are zeros; tokens whose own form has no
    vector get no target at all.
    """

    def __init__(self, table: np.ndarray, rows_by_type: np.ndarray, loss: str,
                 objective: str = "own_word"):
        xp = get_array_module(table)
        self.table = xp.concatenate([table, xp.zeros((1, table.shape[1]), dtype=table.dtype)])
        self.rows_by_type = rows_by_type
        self.loss = loss
        self.columns = OBJECTIVE_COLUMNS[objective]
        self._distance = (
            CosineDistance(normalize=True, ignore_zeros=True) if loss == "cosine"
            else L2Distance(normalize=True)
        )

    @property
    def width(self) -> int:
        return int(self.table.shape[1]) * len(self.columns)

    @property
    def needs_heads(self) -> bool:
        return "head" in self.columns

    def target_rows(self, ids: np.ndarray, lengths: list[int],
                    heads: np.ndarray | None = None) -> np.ndarray:
        """(tokens, columns) vector rows; -1 where there is no vector or no such token.

        `heads` holds each token's head as an offset from the token (0 for a root)."""
        xp = get_array_module(ids)
        rows = self.rows_by_type[ids]
        if self.columns == (0,):
            return rows[:, None]
        segment = xp.asarray(np.repeat(np.arange(len(lengths)), lengths))
        index = xp.arange(len(ids))
        columns = []
        for column in self.columns:
            if column == "head":
                if heads is None:
                    raise ValueError("the head objectives need the corpus's parse")
                wanted = index + heads
            else:
                wanted = index + column
            source = xp.clip(wanted, 0, len(ids) - 1)
            inside = (segment[source] == segment) & (wanted >= 0) & (wanted < len(ids))
            columns.append(xp.where(inside, rows[source], -1))
        return xp.stack(columns, axis=1)

    def __call__(self, ids: np.ndarray, lengths: list[int], prediction: np.ndarray,
                 heads: np.ndarray | None = None, where: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (gradient, loss per token, which tokens have a target).

        With `where` (token positions), `prediction` holds only those tokens' outputs and
        the results are theirs."""
        rows = self.target_rows(ids, lengths, heads)
        known = self.rows_by_type[ids] >= 0
        if where is not None:
            rows, known = rows[where], known[where]
        target = self.table[rows].reshape(len(rows), -1)  # row -1 is the zero row
        if self.loss == "cosine":
            target[~known] = 0.0  # ignored by CosineDistance(ignore_zeros=True)
        else:
            missing = (rows < 0) | ~known[:, None]
            missing = missing.repeat(self.table.shape[1], axis=1)
            target[missing] = prediction[missing]  # zero gradient where there is no target
        d_pred = self._distance.get_grad(prediction, target)  # divided by len(prediction)
        if where is not None:  # normalise by the batch's tokens, as for a full prediction
            d_pred *= len(rows) / len(ids)
        return d_pred, self.token_losses(prediction, target) * known, known

    def token_losses(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Loss of each token: 1 - cosine similarity, or squared distance."""
        xp = get_array_module(prediction)
        if self.loss == "cosine":
            norms = xp.linalg.norm(prediction, axis=1) * xp.linalg.norm(target, axis=1)
            return 1.0 - (prediction * target).sum(axis=1) / (norms + 1e-8)
        return ((prediction - target) ** 2).sum(axis=1)


class Masker:
    """BERT-style input masking as spaCy's pre-training does it: each token is picked with
    probability `mask_prob`; a picked token's input becomes "[MASK]" (80%), a random type
    (10%) or stays (10%), and only picked tokens send a gradient. Works on type ids, so
    both engines see the same masked input; targets stay the original tokens'."""

    def __init__(self, mask_prob: float, n_types: int, seed: int):
        self.mask_prob = mask_prob
        self.mask_id = n_types  # one extra type after the store's: "[MASK]"
        self.n_random = min(n_types, 10_000)
        self.rng = np.random.default_rng([seed, 1])

    def __call__(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Input ids and the positions of the tokens that are trained (None: all)."""
        if self.mask_prob <= 0:
            return ids, None
        picked = self.rng.random(len(ids)) < self.mask_prob
        roll = self.rng.random(len(ids))
        random_ids = self.rng.integers(0, self.n_random, len(ids))
        inputs = np.where(picked & (roll < 0.8), self.mask_id, ids)
        inputs = np.where(picked & (roll >= 0.8) & (roll < 0.9), random_ids, inputs)
        return inputs, np.flatnonzero(picked)


def input_vocab(lang: str = "en") -> Vocab:
    """The vocab input Docs are built with: the language's, as in a spaCy pipeline, whose
    lexical attribute getters give NORM, PREFIX, SUFFIX and SHAPE. (A bare `Vocab()` leaves
    them all 0, so every word would embed alike and only the mean target could be learnt.)"""
    import spacy

    return spacy.blank(lang).vocab


class TypeFeatures:
    """The hashed lexical attributes of every store type, as spaCy's FeatureExtractor
    computes them for a Doc made of those words, gathered per token by type id."""

    def __init__(self, types: list[str], attrs: list[str], vocab: Vocab, chunk: int = 10_000):
        from spacy.attrs import IDS

        columns = [IDS[a.upper()] for a in attrs]
        parts = [
            Doc(vocab, words=types[i : i + chunk]).to_array(columns).astype("uint64")
            for i in range(0, len(types), chunk)
        ]
        self.keys = np.concatenate(parts).reshape(len(types), len(columns))
        mask = Doc(vocab, words=[MASK_WORD]).to_array(columns).astype("uint64")
        self.keys = np.concatenate([self.keys, mask.reshape(1, len(columns))])
        if len(types) > 1 and not self.keys[:-1].any():
            raise ValueError("every lexical attribute is 0: the vocab has no attribute getters "
                             "(use input_vocab())")

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        return self.keys[ids]

    def to_device(self, ops) -> TypeFeatures:  # noqa: ANN001
        self.keys = ops.asarray(self.keys)
        return self


class FastTok2Vec:
    """Runs spaCy's tok2vec model on token ids instead of Docs, computing only what the loss
    needs.

    It calls the very layers of the spaCy model (hash embeddings, maxout, window CNN) with
    feature keys gathered from a per-type table, skipping Doc construction and feature
    extraction per batch; the weights trained are those of the spaCy model. Only the
    encoder without static-vector input has this path.

    When only some tokens are trained (input masking: 15%), the output is needed at those
    tokens alone, and each window layer below needs its input only within its window of the
    rows the layer above needs. So the last layer runs on 15% of the rows, the one below on
    the rows within one token of them, and so on down to the embeddings: the same outputs
    and gradients at the trained tokens (the other tokens' gradients are 0 anyway) for about
    half the work at depth 4. The layout is spaCy's own: sequences joined with `pad` zero
    rows between them (`with_array(pad=depth × window)`), so edges behave as in spaCy.
    """

    def __init__(self, tok2vec: Model, features: TypeFeatures):
        embed, self.encode = tok2vec.get_ref("embed"), tok2vec.get_ref("encode")
        self.features = features.to_device(tok2vec.ops)
        names = [layer.name for layer in embed.layers]
        if names[:2] != ["extract_features", "list2ragged"] or len(names) != 5:
            raise ValueError(f"no fast path for this embedding layer: {names}")
        self.embed_concat = embed.layers[2].layers[0]
        self.embed_maxout = embed.layers[3].layers[0]
        self.blocks = _window_blocks(self.encode)  # None: not a window CNN, run it whole

    def begin_update(self, type_ids: np.ndarray, lengths: list[int], trained=None):  # noqa: ANN001, ANN201
        """Encode a batch of type ids; return the encodings of the `trained` tokens
        (positions in the batch; None: all tokens, in order) and the backprop taking their
        gradients."""
        keys = self.features(self.encode.ops.asarray(type_ids))
        if trained is None or self.blocks is None or len(trained) == 0:
            return self._dense(keys, lengths, trained)
        return self._needed_only(keys, lengths, trained)

    def _dense(self, keys: np.ndarray, lengths: list[int], trained):  # noqa: ANN001, ANN202
        embedded, bp_concat = self.embed_concat(keys, is_train=True)
        mixed, bp_maxout = self.embed_maxout(embedded, is_train=True)
        ops = self.encode.ops
        encoded, bp_encode = self.encode(ops.unflatten(mixed, ops.asarray1i(lengths)),
                                         is_train=True)
        rows, bp_select = select_rows(ops, encoded, trained)

        def backprop(d_rows: np.ndarray) -> None:
            bp_concat(bp_maxout(ops.flatten(bp_encode(bp_select(d_rows)))))

        return rows, backprop

    def _needed_only(self, keys: np.ndarray, lengths: list[int], trained):  # noqa: ANN001, ANN202
        ops = self.encode.ops
        xp = ops.xp
        pad, window = self.encode.attrs["pad"], self.blocks[0][0]
        n_segments, total = len(lengths), sum(lengths) + pad * (len(lengths) + 1)
        segment_of = np.repeat(np.arange(n_segments), lengths)
        position = xp.asarray(np.arange(sum(lengths)) + pad * (segment_of + 1))  # padded
        needed = [xp.zeros(total, dtype=bool) for _ in range(len(self.blocks) + 1)]
        needed[-1][position[trained]] = True
        for depth in range(len(self.blocks), 0, -1):  # a row's window, one layer down
            below = needed[depth - 1]
            for offset in range(-window, window + 1):
                shifted = xp.roll(needed[depth], offset)
                if offset > 0:
                    shifted[:offset] = False
                elif offset < 0:
                    shifted[offset:] = False
                below |= shifted
        tokens = xp.flatnonzero(needed[0][position])  # tokens whose embedding is needed
        embedded, bp_concat = self.embed_concat(keys[tokens], is_train=True)
        mixed, bp_maxout = self.embed_maxout(embedded, is_train=True)
        X = ops.alloc2f(total, mixed.shape[1])
        X[position[tokens]] = mixed
        rows_by_block, backprops = [], []
        for (_, layer), need in zip(self.blocks, needed[1:], strict=True):
            rows = xp.flatnonzero(need)
            windows, valid = _window_rows(xp, rows, window, total)
            gathered = X[xp.clip(windows, 0, total - 1)] * valid[..., None]
            hidden, backprop = layer(gathered.reshape(len(rows), -1), is_train=True)
            X[rows] += hidden  # the residual (X itself is not needed for the backward)
            rows_by_block.append((rows, windows, valid))
            backprops.append(backprop)
        out_rows = position[trained]

        def backprop(d_rows: np.ndarray) -> None:
            dX = ops.alloc2f(total, d_rows.shape[1])
            dX[out_rows] = d_rows
            for (rows, windows, valid), bp in zip(reversed(rows_by_block), reversed(backprops),
                                                  strict=True):
                d_windows = bp(dX[rows]).reshape(len(rows), 2 * window + 1, -1)
                for k in range(2 * window + 1):  # unique targets per offset: plain +=
                    keep = valid[:, k]
                    dX[windows[keep, k]] += d_windows[keep, k]
            bp_concat(bp_maxout(dX[position[tokens]]))

        return X[out_rows], backprop


class DocTok2Vec:
    """The plain path: Docs of the (masked) input words through the spaCy model; the
    reference the fast path is tested against, and the one for static-vector input."""

    def __init__(self, tok2vec: Model, vocab: Vocab, input_types: list[str]):
        self.tok2vec, self.vocab, self.input_types = tok2vec, vocab, input_types

    def begin_update(self, type_ids: np.ndarray, lengths: list[int], trained=None):  # noqa: ANN001, ANN201
        splits = np.split(type_ids, np.cumsum(lengths)[:-1])
        docs = [Doc(self.vocab, words=[self.input_types[i] for i in seg]) for seg in splits]
        encoded, bp_encoded = self.tok2vec.begin_update(docs)
        rows, bp_select = select_rows(self.tok2vec.ops, encoded, trained)
        return rows, lambda d_rows: bp_encoded(bp_select(d_rows))


def _window_blocks(encode: Model) -> list[tuple[int, Model]] | None:
    """(window size, the per-row layer after the window) of each residual block of spaCy's
    MaxoutWindowEncoder (`with_array(residual(expand_window >> maxout...)) × depth`)."""
    if not encode.name.startswith("with_array(residual(expand_window") or "pad" not in encode.attrs:
        return None
    blocks = [node for node in encode.walk()  # the residuals, not the chain of them
              if node.name.startswith("residual(") and len(node.layers) == 1]
    found = []
    for block in blocks:
        expand, layer = block.layers[0].layers
        if expand.name != "expand_window":
            return None
        found.append((int(expand.attrs["window_size"]), layer))
    return found or None


def _window_rows(xp, rows, window: int, total: int):  # noqa: ANN001, ANN202
    """Row indices of each row's window, [row - window, row + window], and which exist."""
    windows = rows[:, None] + xp.arange(-window, window + 1)[None, :]
    return windows, (windows >= 0) & (windows < total)


def output_layer(settings: PretrainSettings, width: int) -> Model:
    """Maxout (layer-normed; skipped when hidden_width is 0) → zero-initialised Linear, as
    spaCy's vectors objective builds it."""
    linear = Linear(nO=width, init_W=zero_init)
    if not settings.hidden_width:
        return linear
    return chain(Maxout(nO=settings.hidden_width, nP=settings.encoder.maxout_pieces,
                        normalize=True, dropout=0.0), linear)


def columns(start: int, stop: int) -> Model:
    """Columns start:stop of an array (gradients of the other columns are zero)."""

    def forward(model: Model, X, is_train: bool):  # noqa: ANN001, ANN202
        def backprop(dY):  # noqa: ANN001, ANN202
            dX = model.ops.alloc2f(*X.shape)
            dX[:, start:stop] = dY
            return dX

        return X[:, start:stop], backprop

    return Model(f"columns({start}:{stop})", forward)


def build_pretrain_model(settings: PretrainSettings, target_width: int) -> Model:
    """tok2vec, then an output layer to the targets' width.

    For the next/previous-word objective the BiLSTM's left-to-right half feeds one output
    layer (the next word's vector) and its right-to-left half another (the previous
    word's), so neither sees the word it predicts."""
    tok2vec = build_tok2vec(settings.encoder)
    if settings.objective == "next_prev":
        half, vector_width = settings.encoder.width // 2, target_width // 2
        head = chain(list2array(), concatenate(
            chain(columns(0, half), output_layer(settings, vector_width)),
            chain(columns(half, 2 * half), output_layer(settings, vector_width)),
        ))
    else:
        head = chain(list2array(), output_layer(settings, target_width))
    model = chain(tok2vec, head)
    model.set_ref("tok2vec", tok2vec)
    return model


def output_of(model: Model) -> Model:
    """The output layer of a `build_pretrain_model` model: arrays in, predictions out."""
    return model.layers[1].layers[1]


def update_output(output: Model, objective: VectorObjective, inputs, ids, lengths: list[int],
                  trained, heads=None, weight: float = 1.0):  # noqa: ANN001, ANN201
    """Forward and backward through the output layer for the trained tokens only.

    `inputs` are the encoder's outputs at the `trained` positions (all tokens when None).
    With input masking only the masked tokens send a gradient (spaCy multiplies the other
    tokens' by 0), so running the wide output layer on the other 85% is wasted work: the
    same gradients at about a sixth of the cost. Returns the gradient for `inputs`, and
    the loss and target flags of the trained tokens."""
    ops = output.ops
    if len(inputs) == 0:
        return ops.alloc2f(*inputs.shape), ops.alloc1f(0), ops.alloc1f(0) > 0
    prediction, backprop = output.begin_update(inputs)
    d_pred, token_loss, known = objective(ids, lengths, prediction, heads, trained)
    return backprop(d_pred * weight if weight != 1.0 else d_pred), token_loss, known


def select_rows(ops: Ops, encoded: list, trained):  # noqa: ANN001, ANN201
    """The rows of a list of encodings at `trained` (flat positions; None: all), and the
    backprop from those rows' gradients to the list's."""
    lengths = ops.asarray1i([len(x) for x in encoded])
    flat = ops.flatten(encoded)
    if trained is None:
        return flat, lambda d_rows: ops.unflatten(d_rows, lengths)

    def backprop(d_rows):  # noqa: ANN001, ANN202
        d_flat = ops.alloc2f(*flat.shape)
        d_flat[trained] = d_rows
        return ops.unflatten(d_flat, lengths)

    return flat[trained], backprop


# ---------------------------------------------------------------- resumable state


def _optimizer_state(model: Model, optimizer: Optimizer) -> dict:
    """Optimizer moments keyed by node position, not node id (ids differ per process)."""
    index = {node.id: i for i, node in enumerate(model.walk())}

    def remap(table: dict | None) -> dict | None:
        return None if table is None else {(index[k[0]], k[1]): v for k, v in table.items()}

    return {name: remap(getattr(optimizer, name))
            for name in ("mom1", "mom2", "averages", "nr_update", "last_seen")}


def _restore_optimizer(model: Model, optimizer: Optimizer, state: dict) -> None:
    ids = [node.id for node in model.walk()]
    for name, table in state.items():
        if table is None:
            continue
        restored = {(ids[k[0]], k[1]): v for k, v in table.items()}
        current = getattr(optimizer, name)
        current.clear()
        current.update(restored)


# Settings that change what is saved or logged when, never what is trained.
NOT_FINGERPRINTED = ("log_every_words", "save_every_words", "on_changed_settings")


def fingerprint(settings: PretrainSettings, store: TokenStore, targets_shape: tuple[int, int],
                inputs_shape: tuple[int, int] | None) -> dict[str, Any]:
    """What a saved state was trained with: every setting that changes the weights, and the
    sizes of the corpus and vector tables. A state resumes only under an equal fingerprint."""
    flat = {key: value for key, value in asdict(settings).items()
            if key not in NOT_FINGERPRINTED and key != "encoder"}
    flat.update({f"encoder.{key}": value for key, value in asdict(settings.encoder).items()})
    flat.update({"corpus.n_words": store.n_words, "corpus.n_types": len(store.types),
                 "targets.shape": list(targets_shape),
                 "input_vectors.shape": list(inputs_shape) if inputs_shape else None})
    return json.loads(json.dumps(flat, sort_keys=True))


def fingerprint_changes(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """`key: saved → current` for each difference (empty when the fingerprints are equal)."""
    if saved is None:
        return ["(no fingerprint: the state was written by an older version)"]
    return [f"{key}: {saved.get(key, '(absent)')!r} → {current.get(key, '(absent)')!r}"
            for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]


class ChangedSettingsError(ValueError):
    """A saved state was trained under other settings than the run that would resume it."""


@dataclass
class RunPaths:
    """Files of one pre-training run: `words-N.bin` (spaCy tok2vec bytes) and `words-N.state`
    (everything needed to continue from N) per checkpoint, a periodic `partial.state`, and
    the JSON-lines training log."""

    out_dir: Path

    @property
    def log(self) -> Path:
        return self.out_dir / "log.jsonl"

    @property
    def partial_state(self) -> Path:
        return self.out_dir / "partial.state"

    def checkpoint(self, words: int) -> Path:
        return self.out_dir / f"words-{words}.bin"

    def state(self, words: int) -> Path:
        return self.out_dir / f"words-{words}.state"

    def latest_state(self, checkpoints: list[int], current: dict[str, Any] | None = None,
                     on_changed: str = "error") -> Path | None:
        """The saved state furthest along that does not go past the last checkpoint.

        With a `current` fingerprint, a state saved under another one is refused with a
        `ChangedSettingsError` naming the differences, or skipped (`on_changed="restart"`).
        """
        candidates = [self.state(n) for n in checkpoints if self.state(n).exists()]
        if self.partial_state.exists():
            candidates.append(self.partial_state)
        found = []
        for path in candidates:
            state = _read_state(path)
            if state["words"] <= checkpoints[-1]:
                found.append((state["words"], path, state.get("fingerprint")))
        for _words, path, saved in sorted(found, key=lambda item: item[0], reverse=True):
            changes = [] if current is None else fingerprint_changes(saved, current)
            if not changes:
                return path
            if on_changed == "error":
                raise ChangedSettingsError(
                    f"{path}: this state was trained under other settings, so the run does "
                    f"not resume from it ({'; '.join(changes)}). Delete it (and the run's "
                    "other states) to start over, or set the run's settings."
                    "on_changed_settings: restart")
            print(f"{path}: trained under other settings ({'; '.join(changes)}); "
                  "not resumed (on_changed_settings: restart)", file=sys.stderr)
        return None


def _read_state(path: Path) -> dict:
    try:
        state = pickle.loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as err:
        raise InputError(path, None, f"not a readable pre-training state ({type(err).__name__}"
                         f": {err}); a truncated or foreign file? Delete it to start over"
                         ) from err
    if not isinstance(state, dict) or "words" not in state or "model" not in state:
        raise InputError(path, None, "not a pre-training state (no words/model entries)")
    return state


def _save_state(path: Path, model: Model, optimizer: Optimizer, words: int,
                generators: dict[str, np.random.Generator], fingerprint: dict[str, Any]) -> None:
    state = {
        "words": words,
        "fingerprint": fingerprint,
        "model": model.to_bytes(),
        "optimizer": _optimizer_state(model, optimizer),
        "numpy_random": np.random.get_state(),
        "python_random": random.getstate(),
        "generators": {name: rng.bit_generator.state for name, rng in generators.items()},
    }
    write_bytes(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


def _truncate_log(path: Path, words: int) -> None:
    """Drop log lines written after the state we resume from. A torn last line (what a kill
    or a full disk leaves) is dropped with a warning; a bad line before it is an error."""
    if not path.exists():
        return
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), start=1)
             if line.strip()]
    kept = []
    for i, (line_no, line) in enumerate(lines):
        try:
            entry = json.loads(line)
            logged_words = int(entry["words"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            if i == len(lines) - 1:
                print(f"{path}:{line_no}: dropping a torn last line ({err})", file=sys.stderr)
                break
            raise InputError(path, line_no, f"not a log entry with 'words' ({err})") from err
        if logged_words <= words:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))


# ---------------------------------------------------------------- the loop


class Preempted(RuntimeError):
    """A stop signal arrived; the state at `words` is saved and a rerun continues from it."""

    def __init__(self, signum: int, words: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} after {words:,} words; "
                         "the state is saved, rerun to continue")
        self.signum, self.words = signum, words

    def __reduce__(self):  # noqa: ANN204
        return type(self), (self.signum, self.words)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # a scheduler's pre-emption, Ctrl-C


@contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """Turn SIGTERM/SIGINT into a request the loop honours after the current batch.

    SLURM sends SIGTERM on pre-emption or `scancel` and SIGKILL only after KillWait
    (30 s by default): ample time to finish a batch and save, so no work is lost.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.signal(s, lambda signum, _frame: received.append(signum))
                for s in STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def pretrain(
    store_dir: str | Path,
    vectors_dir: str | Path,
    settings: PretrainSettings,
    checkpoint_words: list[int],
    out_dir: str | Path,
    input_vectors_dir: str | Path | None = None,
    progress: bool = True,
    gpu_id: int | None = None,
    parse_dir: str | Path | None = None,
) -> list[Path]:
    """Pre-train and write `words-{N}.bin` for each N in `checkpoint_words`; return them.

    With `gpu_id`, thinc runs the model on that GPU through cupy (`require_gpu`); arrays
    stay on the device and only token ids cross over per batch.

    Continues from the furthest saved state in `out_dir` (a checkpoint's or the periodic
    one), so a rerun after a crash loses no finished work and repeats no word.
    """
    checkpoints = sorted({int(n) for n in checkpoint_words})
    if not checkpoints or checkpoints[0] <= 0:
        raise ValueError("checkpoint word counts must be positive")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if gpu_id is not None:
        require_gpu(gpu_id)
        ops = get_current_ops()
    else:
        ops = BlasOps(seed=settings.seed)
    inputs = PretrainInputs(Path(store_dir), Path(vectors_dir),
                            Path(input_vectors_dir) if input_vectors_dir else None,
                            Path(parse_dir) if parse_dir else None)
    with using_ops(ops), _stop_requests() as stop:
        return _pretrain(inputs, settings, checkpoints, RunPaths(Path(out_dir)), progress, ops,
                         stop)


@dataclass(frozen=True)
class PretrainInputs:
    store: Path
    vectors: Path
    input_vectors: Path | None = None
    parse: Path | None = None  # heads.i32 of the store's parse, for the head objectives


def _pretrain(inputs: PretrainInputs, settings: PretrainSettings, checkpoints: list[int],
              paths: RunPaths, progress: bool, ops: Ops, stop: list[int]) -> list[Path]:
    store = TokenStore(inputs.store)
    vectors_dir, input_vectors_dir = inputs.vectors, inputs.input_vectors
    targets = load_table(vectors_dir)
    matrix, rows_by_type = targets_for_types(store.types, targets,
                                             settings.target_lookup == "lowercase")
    objective = VectorObjective(ops.asarray(matrix), ops.asarray(rows_by_type), settings.loss,
                                settings.objective)
    parse = None
    if objective.needs_heads:
        if inputs.parse is None:
            raise ValueError(f"objective {settings.objective!r} needs a parse of the corpus")
        parse = read_heads(inputs.parse, store)
    available = store.n_words * settings.max_epochs
    if checkpoints[-1] > available:
        raise ValueError(
            f"last checkpoint at {checkpoints[-1]:,} words, but {store.path} has "
            f"{store.n_words:,} words × max_epochs {settings.max_epochs} = {available:,}"
        )

    vocab = input_vocab(store.meta.get("lang", "en"))
    if settings.encoder.include_static_vectors:
        vocab.vectors = load_table(input_vectors_dir or vectors_dir)
    run_fingerprint = fingerprint(
        settings, store, tuple(targets.shape),
        tuple(vocab.vectors.shape) if settings.encoder.include_static_vectors else None)
    fix_random_seed(settings.seed)
    model = build_pretrain_model(settings, objective.width)
    types = store.types
    input_types = [*types, MASK_WORD]
    model.initialize(X=[Doc(vocab, words=store.words(store.doc(0)[:50]))])
    set_dropout_rate(model, settings.dropout)
    optimizer = Adam(settings.learn_rate, L2=settings.L2, grad_clip=settings.grad_clip,
                     L2_is_weight_decay=True, use_averages=True)
    masker = Masker(settings.mask_prob, len(types), settings.seed)
    generators = {"mask": masker.rng}
    if hasattr(ops, "rng"):
        generators["ops"] = ops.rng
    stream = WordStream(store, settings.seed, settings.shuffle, settings.max_doc_length,
                        settings.max_epochs)

    words = 0
    resume_from = paths.latest_state(checkpoints, run_fingerprint, settings.on_changed_settings)
    if resume_from is not None:
        state = _read_state(resume_from)
        model.from_bytes(state["model"])
        _restore_optimizer(model, optimizer, state["optimizer"])
        np.random.set_state(state["numpy_random"])
        random.setstate(state["python_random"])
        for name, rng in generators.items():
            rng.bit_generator.state = state["generators"][name]
        words = int(state["words"])
        stream.skip(words)
        _truncate_log(paths.log, words)
    else:
        paths.log.write_text("")

    tok2vec = model.get_ref("tok2vec")
    output = output_of(model)
    if settings.engine == "fast":
        encoder = FastTok2Vec(tok2vec, TypeFeatures(types, settings.encoder.attrs, vocab))
    else:
        encoder = DocTok2Vec(tok2vec, vocab, input_types)
    bar = tqdm(total=checkpoints[-1], initial=words, unit=" words", unit_scale=True,
               desc="pretrain", disable=not progress, mininterval=2)
    started = time.perf_counter()
    words_at_start = words
    loss_sum, known_words, interval_start = 0.0, 0, words
    next_log = words + settings.log_every_words
    next_save = words + settings.save_every_words
    for target in checkpoints:
        if words >= target:  # reached before a resume
            continue
        while words < target:
            segments = stream.take(min(settings.batch_words, target - words))
            lengths = [len(s) for s in segments]
            host_ids = stream.gather(store.tokens, segments)
            host_inputs, trained = masker(host_ids)
            ids = ops.asarray(host_ids)
            if trained is not None:
                trained = ops.xp.asarray(trained)
            rows, bp_rows = encoder.begin_update(host_inputs, lengths, trained)
            heads = None if parse is None else ops.asarray(stream.gather(parse, segments))
            d_rows, token_loss, known = update_output(output, objective, rows, ids, lengths,
                                                      trained, heads)
            bp_rows(d_rows)
            model.finish_update(optimizer)
            words += len(ids)
            loss_sum += float(token_loss.sum())
            known_words += int(known.sum())
            bar.update(len(ids))
            if words >= next_log or words == target:
                elapsed = time.perf_counter() - started
                append_jsonl(paths.log, {  # loss: mean over the trained tokens with a target
                    "words": words,
                    "loss": loss_sum / max(known_words, 1),
                    "loss_sum": loss_sum,
                    "interval_words": words - interval_start,
                    "known_words": known_words,
                    "words_per_s": (words - words_at_start) / max(elapsed, 1e-9),
                    "elapsed_s": elapsed,
                })
                loss_sum, known_words, interval_start = 0.0, 0, words
                next_log = words + settings.log_every_words
            if (words >= next_save or stop) and words < target:
                _save_state(paths.partial_state, model, optimizer, words, generators,
                            run_fingerprint)
                next_save = words + settings.save_every_words
            if stop and words < target:
                bar.close()
                raise Preempted(stop[0], words)
        with model.use_params(optimizer.averages):  # spaCy saves averaged weights too
            write_bytes(paths.checkpoint(target), tok2vec.to_bytes())
        _save_state(paths.state(target), model, optimizer, words, generators, run_fingerprint)
        if stop and target != checkpoints[-1]:
            bar.close()
            raise Preempted(stop[0], words)
    bar.close()
    paths.partial_state.unlink(missing_ok=True)
    return [paths.checkpoint(n) for n in checkpoints]
