"""Two ways to run spaCy's tok2vec on a batch of the token store.

`FastTok2Vec` calls the model's own layers on per-type tables gathered by token id (no
Doc per batch) and, on a CPU, computes only the rows the loss needs; `DocTok2Vec` builds
Docs and runs the whole model, as `spacy pretrain` does. Both train the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spacy.attrs import IDS, ORTH
from spacy.tokens import Doc
from spacy.vectors import Mode
from spacy.vocab import Vocab
from thinc.api import Model, Ops

from .model import select_rows


def _doc_columns(types: list[str], vocab: Vocab, columns: list[int],
                 chunk: int = 10_000) -> np.ndarray:
    """(types, columns) attribute values of each type, read off Docs of those words."""
    parts = [Doc(vocab, words=types[i : i + chunk]).to_array(columns).astype("uint64")
             for i in range(0, len(types), chunk)]
    return np.concatenate(parts).reshape(len(types), len(columns))


class TypeFeatures:
    """The hashed lexical attributes of every input type (the store's types, then
    "[MASK]"), as spaCy's FeatureExtractor computes them for a Doc of those words."""

    def __init__(self, input_types: list[str], attrs: list[str], vocab: Vocab):
        self.keys = _doc_columns(input_types, vocab, [IDS[a.upper()] for a in attrs])
        if len(input_types) > 2 and not self.keys[:-1].any():
            raise ValueError("every lexical attribute is 0: the vocab has no attribute getters "
                             "(use input_vocab())")

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        return self.keys[ids]

    def to_device(self, ops: Ops) -> TypeFeatures:
        self.keys = ops.asarray(self.keys)
        return self


class TypeVectors:
    """The static vector of every input type, as spaCy's StaticVectors looks it up: by the
    table's key attribute (ORTH unless the table says otherwise); a zero row for a word
    the table lacks; floret tables build each type's vector from its n-grams once, here."""

    def __init__(self, input_types: list[str], vocab: Vocab):
        vectors = vocab.vectors
        keys = _doc_columns(input_types, vocab, [getattr(vectors, "attr", ORTH)])[:, 0]
        if vectors.mode == Mode.floret:
            self.table = np.asarray(vectors.get_batch(keys), dtype="float32")
            self.rows = np.arange(len(input_types))
        else:
            data = np.asarray(vectors.data, dtype="float32")
            self.table = np.concatenate([data, np.zeros((1, data.shape[1]), "float32")])
            self.rows = np.asarray(vectors.find(keys=keys))
            self.rows[self.rows < 0] = len(data)  # the zero row

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        return self.table[self.rows[ids]]

    def to_device(self, ops: Ops) -> TypeVectors:
        self.table, self.rows = ops.asarray(self.table), ops.asarray(self.rows)
        return self


class NoFastPath(ValueError):
    """The model's layers are not the ones the fast engine knows how to call."""


def _find(model: Model, what: str, test) -> Model:
    found = [node for node in model.walk() if test(node)]
    if len(found) != 1:
        raise NoFastPath(f"expected one {what} layer in {model.name!r}, found {len(found)}")
    return found[0]


@dataclass
class EmbedLayers:
    """The layers of spaCy's MultiHashEmbed, found by name (not position): the
    concatenated hash embeddings, the static vectors' projection (or None), the maxout and
    layer norm that mix them (a function of the type alone) and the dropout after that
    (per token; None if the mixer has none)."""

    hashed: Model
    static: Model | None
    mixer: Model
    mixer_dropout: Model | None

    @classmethod
    def of(cls, embed: Model) -> EmbedLayers:
        def is_hash_concat(node: Model) -> bool:  # thinc names a concatenate "a|b|..."
            names = [layer.name for layer in node.layers]
            return bool(names) and node.name == "|".join(names) and all(
                name.endswith("hashembed") for name in names)

        hashed = _find(embed, "concatenated hash embeddings", is_hash_concat)
        statics = [node for node in embed.walk() if node.name == "static_vectors"]
        mixer = _find(embed, "maxout", lambda node: node.name.startswith("with_array(maxout")
                      and len(node.layers) == 1).layers[0]
        dropout = None
        if mixer.name.endswith(">>dropout") and len(mixer.layers) == 2 \
                and mixer.layers[1].name == "dropout":  # thinc's Maxout(dropout=...)
            mixer, dropout = mixer.layers
        if any("dropout_rate" in node.attrs for node in mixer.walk()):
            raise NoFastPath(f"a dropout inside the embedding's mixer {mixer.name!r}")
        return cls(hashed, statics[0] if statics else None, mixer, dropout)


def window_blocks(encode: Model) -> list[tuple[int, Model]] | None:
    """(window size, the per-row layer after the window) of each residual block of spaCy's
    MaxoutWindowEncoder, found by name; None for another encoder (e.g. the BiLSTM)."""
    if "expand_window" not in encode.name or "pad" not in encode.attrs:
        return None
    found = []
    for block in encode.walk():
        if not block.name.startswith("residual(") or len(block.layers) != 1:
            continue
        inner = block.layers[0]
        expand = [layer for layer in inner.layers if layer.name == "expand_window"]
        rest = [layer for layer in inner.layers if layer.name != "expand_window"]
        if len(expand) != 1 or len(rest) != 1 or inner.layers[0] is not expand[0]:
            raise NoFastPath(f"unexpected residual block {block.name!r}")
        found.append((int(expand[0].attrs["window_size"]), rest[0]))
    return found or None


def _sum_by_type(ops: Ops, inverse: np.ndarray, n_types: int):
    """A sparse (types × tokens) matrix of ones: its product with per-token rows sums them
    per type. Built on the host, where the ids are; multiplied on the ops' device."""
    order = np.argsort(inverse, kind="stable").astype("int32")
    indptr = np.zeros(n_types + 1, dtype="int32")
    np.cumsum(np.bincount(inverse, minlength=n_types), out=indptr[1:])
    data = np.ones(len(inverse), dtype="float32")
    if ops.xp is np:
        from scipy.sparse import csr_matrix
    else:
        from cupyx.scipy.sparse import csr_matrix

        data, order, indptr = ops.asarray(data), ops.asarray(order), ops.asarray(indptr)
    return csr_matrix((data, order, indptr), shape=(n_types, len(inverse)))


def mix_per_type(layers: EmbedLayers, parts: list, backprops: list, inverse: np.ndarray,
                 ops: Ops, is_train: bool):
    """The embedding's mixer (maxout + layer norm) on the per-type `parts` (hash
    embeddings, static vectors), gathered per token by `inverse`, then the mixer's
    per-token dropout; the backprop sums the tokens' gradients per type and hands each
    part its columns. (Pre-training's engine and the fine-tuning fast path share it.)"""
    per_type = ops.xp.hstack(parts) if len(parts) > 1 else parts[0]
    mixed_types, bp_mixed = layers.mixer(per_type, is_train=is_train)
    mixed = mixed_types[ops.asarray(inverse)]
    bp_dropout = None
    if layers.mixer_dropout is not None:
        mixed, bp_dropout = layers.mixer_dropout(mixed, is_train=is_train)

    def backprop(d_mixed) -> None:
        if bp_dropout is not None:
            d_mixed = bp_dropout(d_mixed)
        d_types = _sum_by_type(ops, inverse, len(per_type)) @ d_mixed
        d_per_type = bp_mixed(ops.as_contig(d_types))
        start = 0
        for part, bp in zip(parts, backprops, strict=True):
            bp(ops.as_contig(d_per_type[:, start : start + part.shape[1]]))
            start += part.shape[1]

    return mixed, backprop


def _static_forward(layer: Model, vectors: np.ndarray):
    """spaCy's StaticVectors on gathered vectors: a projection without bias, with dropout
    over output columns."""
    ops = layer.ops
    W = ops.as_contig(layer.get_param("W"))
    projected = ops.gemm(vectors, W, trans2=True)
    rate = layer.attrs.get("dropout_rate")
    mask = ops.get_dropout_mask((W.shape[0],), rate) if rate is not None else None
    if mask is not None:
        projected *= mask

    def backprop(d_projected: np.ndarray) -> None:
        if mask is not None:
            d_projected = d_projected * mask
        layer.inc_grad("W", ops.gemm(d_projected, vectors, trans1=True))

    return projected, backprop


class FastTok2Vec:
    """Runs spaCy's tok2vec model on token ids instead of Docs, computing only what the loss
    needs.

    It calls the very layers of the spaCy model (hash embeddings, static vectors, maxout,
    window CNN) with feature keys and vectors gathered from per-type tables, skipping Doc
    construction and feature extraction per batch; the weights trained are the spaCy
    model's.

    When only some tokens are trained (input masking: 15%), the output is needed at those
    tokens alone, and each window layer below needs its input only within its window of the
    rows the layer above needs. So the last layer runs on 15% of the rows, the one below on
    the rows within one token of them, and so on down to the embeddings: the same outputs
    and gradients at the trained tokens (the other tokens' gradients are 0 anyway) for about
    half the work at depth 4 on a CPU. Finding those rows takes a few index operations that
    wait for the device, so on a GPU (`needed_rows=False`) every row is computed. The layout
    is spaCy's own: sequences joined with `pad` zero rows between them
    (`with_array(pad=depth × window)`), so edges behave as in spaCy.
    """

    def __init__(self, tok2vec: Model, features: TypeFeatures, vectors: TypeVectors | None = None,
                 needed_rows: bool = True):
        self.encode = tok2vec.get_ref("encode")
        self.layers = EmbedLayers.of(tok2vec.get_ref("embed"))
        if (self.layers.static is None) != (vectors is None):
            raise NoFastPath("static vectors: the model and the inputs disagree")
        ops = self.encode.ops
        self.features = features.to_device(ops)
        self.vectors = vectors.to_device(ops) if vectors is not None else None
        self.blocks = window_blocks(self.encode)  # None: not a window CNN, run it whole
        if self.blocks is not None and self.encode.attrs["pad"] < sum(w for w, _ in self.blocks):
            raise NoFastPath("the encoder's padding is narrower than its receptive field")
        self.needed_rows = needed_rows

    def begin_update(self, type_ids: np.ndarray, lengths: list[int], trained=None):
        """Encode a batch of type ids; return the encodings of the `trained` tokens
        (positions in the batch; None: all tokens, in order) and the backprop taking their
        gradients."""
        host_ids = np.asarray(type_ids)
        if trained is None or self.blocks is None or len(trained) == 0 or not self.needed_rows:
            return self._dense(host_ids, lengths, trained)
        return self._needed_only(host_ids, lengths, trained)

    def _embed(self, host_ids: np.ndarray):
        """The embedding layer's output for these type ids (host), and its backprop.

        The hash embeddings, the static vectors and the maxout and layer norm that mix them
        depend on the type alone (the embeddings' dropout masks columns, the same for every
        row), so they run once per distinct type in the batch (a third of the tokens at
        3,000 words) and are gathered per token; only the mixer's dropout, per token, runs
        on every token. The gradients are summed per type by one sparse product instead of
        a scatter-add per token (which on a GPU piles atomic adds onto the rows of frequent
        words)."""
        ops = self.encode.ops
        types, inverse = np.unique(host_ids, return_inverse=True)
        device_types = ops.asarray(types)
        hashed, bp_hashed = self.layers.hashed(self.features(device_types), is_train=True)
        parts, backprops = [hashed], [bp_hashed]
        if self.vectors is not None:
            projected, bp_projected = _static_forward(self.layers.static,
                                                      self.vectors(device_types))
            parts.append(projected)
            backprops.append(bp_projected)
        return mix_per_type(self.layers, parts, backprops, inverse, ops, is_train=True)

    def _dense(self, host_ids: np.ndarray, lengths: list[int], trained):
        ops = self.encode.ops
        mixed, bp_embed = self._embed(host_ids)
        encoded, bp_encode = self.encode(ops.unflatten(mixed, np.asarray(lengths, "int32")),
                                         is_train=True)
        rows, bp_select = select_rows(ops, encoded, trained)

        def backprop(d_rows: np.ndarray) -> None:
            bp_embed(ops.flatten(bp_encode(bp_select(d_rows))))

        return rows, backprop

    def _needed_only(self, host_ids: np.ndarray, lengths: list[int], trained):
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
        mixed, bp_embed = self._embed(host_ids[ops.to_numpy(tokens)])
        X = ops.alloc2f(total, mixed.shape[1])
        X[position[tokens]] = mixed
        rows_by_block, backprops = [], []
        offsets = xp.arange(-window, window + 1)[None, :]
        for (_, layer), need in zip(self.blocks, needed[1:], strict=True):
            rows = xp.flatnonzero(need)
            windows = rows[:, None] + offsets  # inside X: the pad covers every window
            hidden, backprop = layer(X[windows].reshape(len(rows), -1), is_train=True)
            X[rows] += hidden  # the residual (X itself is not needed for the backward)
            rows_by_block.append((rows, windows))
            backprops.append(backprop)
        out_rows = position[trained]

        def backprop(d_rows: np.ndarray) -> None:
            dX = ops.alloc2f(total, d_rows.shape[1])
            dX[out_rows] = d_rows
            for (rows, windows), bp in zip(reversed(rows_by_block), reversed(backprops),
                                           strict=True):
                d_windows = bp(dX[rows]).reshape(len(rows), 2 * window + 1, -1)
                for k in range(2 * window + 1):  # unique targets per offset: plain +=
                    dX[windows[:, k]] += d_windows[:, k]
            bp_embed(dX[position[tokens]])

        return X[out_rows], backprop


class DocTok2Vec:
    """The plain path: Docs of the (masked) input words through the spaCy model; the
    reference the fast path is tested against."""

    def __init__(self, tok2vec: Model, vocab: Vocab, input_types: list[str]):
        self.tok2vec, self.vocab, self.input_types = tok2vec, vocab, input_types

    def begin_update(self, type_ids: np.ndarray, lengths: list[int], trained=None):
        splits = np.split(np.asarray(type_ids), np.cumsum(lengths)[:-1])
        docs = [Doc(self.vocab, words=[self.input_types[i] for i in seg]) for seg in splits]
        encoded, bp_encoded = self.tok2vec.begin_update(docs)
        rows, bp_select = select_rows(self.tok2vec.ops, encoded, trained)
        return rows, lambda d_rows: bp_encoded(bp_select(d_rows))


def make_engine(engine: str, tok2vec: Model, vocab: Vocab, input_types: list[str],
                attrs: list[str], static_vectors: bool, needed_rows: bool,
                ) -> tuple[FastTok2Vec | DocTok2Vec, str | None]:
    """The engine a run asked for, or the Doc engine with the reason the fast one cannot
    run this model (which the caller must report)."""
    if engine == "docs":
        return DocTok2Vec(tok2vec, vocab, input_types), None
    try:
        features = TypeFeatures(input_types, attrs, vocab)
        vectors = TypeVectors(input_types, vocab) if static_vectors else None
        return FastTok2Vec(tok2vec, features, vectors, needed_rows), None
    except NoFastPath as err:
        return DocTok2Vec(tok2vec, vocab, input_types), f"the fast engine cannot run it: {err}"
