"""The fast path for fine-tuning: spaCy's own tok2vec model, computed faster.

`install_fast_path(nlp)` swaps the forward function of the pipeline's tok2vec model (the
`chain(embed, encode)` that `spacy.Tok2Vec.v2` builds from `spacy.MultiHashEmbed.v2` and
`spacy.MaxoutWindowEncoder.v2`) for `FastTok2VecForward`, which computes the same outputs
from the same parameters and writes the same gradients, in another order:

- **The embedding once per distinct word of a batch.** The hashed NORM/PREFIX/SUFFIX/SHAPE,
  the static vector and the maxout + layer norm that mix them are functions of the word
  type alone (the hash embeddings' and the static projection's dropout masks are one per
  column, the same for every row), so they run on the batch's distinct types (a third of
  the tokens at 1,000 words, a tenth at 70,000) and are gathered per token; the mixer's
  dropout, one mask per token, runs per token exactly as in spaCy. Gradients are summed
  per type by one sparse product.
- **The window CNN on spaCy's padded layout, built once.** Tokens are gathered straight
  into the array `with_array(pad=depth × window)` would build (the documents joined by
  `pad` zero rows; empty documents take no rows), and spaCy's own residual blocks run on
  it, each with its element-wise work fused (`lmao.window_block`); the output per
  document is a view into it. No per-document lists, no Ragged, no re-padding on the way
  back.

The masks are drawn from the model's ops in spaCy's order and shapes (four hash
embeddings, the static projection, the mixer's per-token mask, then one per window layer),
so with `BlasOps` a fast run draws the very masks a plain run draws and resumes exactly.
Nothing is registered and nothing is saved: a pipeline trained on the fast path is saved
with spaCy's own `nlp.to_disk` and loads with `spacy.load` as any spaCy pipeline, its
plain forward computing what the fast one computed. A model of another shape (a BiLSTM
encoder, another embedding, GPU ops) is left on its plain forward: `install_fast_path`
then returns the reason.

The pipeline's transition-based parsers (`spacy.TransitionBasedParser.v2`: NER, the
dependency parser) get `FastParserForward`: spaCy's own step model, whose lower layer
(PrecomputableAffine) back-propagates once per batch and per token instead of once per
transition step: the same gradients, summed in another order.

One deliberate equality: for a word without a static vector spaCy zeroes the projected
row but back-propagates through the table's last row (`V[rows]` with row -1); the fast path
does the same, so its gradients are spaCy's.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from spacy.attrs import ORTH
from spacy.tokens import Doc
from spacy.util import minibatch
from spacy.vectors import Mode, Vectors
from thinc.api import Model, NumpyOps, set_dropout_rate

from .ops import compiled
from .pretrain.engines import EmbedLayers, NoFastPath, mix_per_type, window_blocks
from .window_block import install_fused_blocks, remove_fused_blocks

_EMBED_CHAINS = (  # the layers of spaCy's MultiHashEmbed.v2 chain, with and without vectors
    ["extract_features", "list2ragged", "with_array", "with_array", "ragged2list"],
    ["concatenate", "with_array", "ragged2list"],
)


def _kind(layer: Model) -> str:
    name = layer.name
    if name.startswith("with_array("):
        return "with_array"
    if name.endswith("|static_vectors"):
        return "concatenate"
    return name


@dataclass
class _Layers:
    """The tok2vec's layers the fast forward calls, found by name (not position)."""

    columns: list[int]
    embed: EmbedLayers
    blocks: Model  # the chain of residual window blocks inside `with_array(pad=...)`
    pad: int
    residuals: list[Model]  # the blocks themselves, in order
    window: int

    @classmethod
    def of(cls, model: Model) -> _Layers:
        if not (model.has_ref("embed") and model.has_ref("encode")):
            raise NoFastPath(f"{model.name!r} has no embed/encode layers")
        embed, encode = model.get_ref("embed"), model.get_ref("encode")
        if list(model.layers) != [embed, encode]:
            raise NoFastPath(f"{model.name!r} is not chain(embed, encode)")
        if [_kind(layer) for layer in embed.layers] not in _EMBED_CHAINS:
            raise NoFastPath(f"the embedding {embed.name!r} is not spaCy's MultiHashEmbed")
        extractors = [node for node in embed.walk() if node.name == "extract_features"]
        if len(extractors) != 1:
            raise NoFastPath("expected one feature extractor")
        layers = EmbedLayers.of(embed)
        blocks = window_blocks(encode)
        if blocks is None or len(encode.layers) != 1:
            raise NoFastPath(f"the encoder {encode.name!r} is not spaCy's window CNN")
        if encode.attrs["pad"] < sum(window for window, _ in blocks):
            raise NoFastPath("the encoder's padding is narrower than its receptive field")
        residuals = [node for node in encode.walk() if node.name.startswith("residual(")
                     and len(node.layers) == 1]
        for block in residuals:  # expand_window, maxout, layer norm (and dropout)
            names = [node.name for node in block.walk()]
            if names.count("maxout") != 1 or names.count("layernorm") != 1:
                raise NoFastPath(f"unexpected window block {block.name!r}")
        return cls(list(extractors[0].attrs["columns"]), layers, encode.layers[0],
                   int(encode.attrs["pad"]), residuals, blocks[0][0])


class FastTok2VecForward:
    """A forward function for spaCy's tok2vec model (`model._func`): Docs in, one array per
    Doc out, as the plain `chain(embed, encode)`; see the module's docstring."""

    def __init__(self, plain):
        self.plain = plain  # the model's own forward: used where there is nothing to gain
        self._layers: dict[int, _Layers] = {}

    def layers(self, model: Model) -> _Layers:
        found = self._layers.get(model.id)
        if found is None:
            found = self._layers[model.id] = _Layers.of(model)
        return found

    def __call__(self, model: Model, docs: list, is_train: bool):
        lengths = [len(doc) for doc in docs]
        if not sum(lengths) or not all(hasattr(doc, "to_array") for doc in docs):
            return self.plain(model, docs, is_train)  # no tokens (or Spans): spaCy's own
        layers = self.layers(model)
        ops = model.ops
        if not is_train:
            return _predict(layers, docs, lengths, ops), _no_backprop
        mixed, bp_embed = _embed(layers, docs, lengths, is_train, ops)
        # spaCy's padded layout: pad rows, then each non-empty doc followed by pad rows
        pad = layers.pad
        starts, start = [], pad
        for length in lengths:
            starts.append(start)
            if length:
                start += length + pad
        total = start
        X = ops.alloc2f(total, mixed.shape[1])
        for begin, length, offset in zip(starts, lengths, np.cumsum([0, *lengths]),
                                         strict=False):
            if length:
                X[begin : begin + length] = mixed[offset : offset + length]
        Y, bp_blocks = layers.blocks(X, is_train)
        outputs = [Y[begin : begin + length] for begin, length in zip(starts, lengths,
                                                                      strict=True)]

        def backprop(d_outputs: list) -> list:
            dY = ops.alloc2f(total, Y.shape[1])
            for begin, length, d in zip(starts, lengths, d_outputs, strict=True):
                if length:
                    dY[begin : begin + length] = d
            dX = bp_blocks(dY)
            d_mixed = ops.xp.concatenate([dX[begin : begin + length]
                                          for begin, length in zip(starts, lengths,
                                                                   strict=True) if length])
            bp_embed(d_mixed)
            return []

        return outputs, backprop


# Prediction runs the window CNN on pieces of about this many rows (whole documents, each
# piece in spaCy's padded layout): a 256-review batch is 70,000 rows, whose 100 MB arrays
# cost more in fresh pages and cache misses than in arithmetic; the pad rows keep every
# document's outputs what they are in one piece.
PREDICT_ROWS = 4096


def _no_backprop(d_outputs):
    raise ValueError("the tok2vec ran without is_train: there is no backward pass")


def _predict(layers: _Layers, docs: list, lengths: list[int], ops) -> list:
    """The outputs for prediction: the embedding once per distinct word of the whole
    batch, the CNN on pieces of about PREDICT_ROWS rows."""
    embed = layers.embed
    vocab = docs[0].vocab
    key_attr = getattr(vocab.vectors, "attr", ORTH)
    types, inverse = _types(_token_features(docs, layers.columns, key_attr))
    n_columns = len(layers.columns)
    hashed = embed.hashed.predict(ops.as_contig(types[:, :n_columns]))
    if embed.static is not None:
        projected, _ = _static_forward(embed.static, vocab, types[:, n_columns], False)
        hashed = ops.xp.hstack([hashed, projected])
    mixed_types = embed.mixer.predict(hashed)
    width, pad = mixed_types.shape[1], layers.pad
    with_zero = ops.xp.vstack([mixed_types, ops.alloc2f(1, width)])
    first = _FirstBlock(layers, mixed_types)
    outputs = [ops.alloc2f(0, width) for _ in docs]
    offsets = np.cumsum([0, *lengths])
    piece: list[int] = []

    def run(piece: list[int]) -> None:
        starts, start = [], pad
        for i in piece:
            starts.append(start)
            start += lengths[i] + pad
        row_types = np.full(start, len(types), dtype="int64")  # pad rows: the zero row
        for i, begin in zip(piece, starts, strict=True):
            row_types[begin : begin + lengths[i]] = inverse[offsets[i] : offsets[i + 1]]
        Y = with_zero[row_types]
        Y += first.block(row_types)
        for block in layers.residuals[1:]:
            Y = block.predict(Y)
        for i, begin in zip(piece, starts, strict=True):
            outputs[i] = Y[begin : begin + lengths[i]]

    rows = 0
    for i, length in enumerate(lengths):
        if not length:
            continue
        if piece and rows + length > PREDICT_ROWS:
            run(piece)
            piece, rows = [], 0
        piece.append(i)
        rows += length + pad
    if piece:
        run(piece)
    return outputs


class _FirstBlock:
    """The first window block's maxout + layer norm for prediction, its product computed
    per distinct word: with no dropout, the block's input row is its word's embedding (or
    a pad row's zeros), so each window position's share of the product (embedding · that
    position's slice of W) is a table of types, and a row's pre-activation is the bias
    plus the sum of its window's entries (a gather-add), not a product per row."""

    def __init__(self, layers: _Layers, mixed_types):
        block = layers.residuals[0]
        maxout = [node for node in block.walk() if node.name == "maxout"]
        norm = [node for node in block.walk() if node.name == "layernorm"]
        if len(maxout) != 1 or len(norm) != 1:
            raise NoFastPath(f"unexpected window block {block.name!r}")
        self.maxout, self.norm, self.ops = maxout[0], norm[0], block.ops
        W = self.maxout.get_param("W")  # (nO, nP, (2w + 1) · width)
        self.nO, self.nP = W.shape[0], W.shape[1]
        self.K, self.n_types = 2 * layers.window + 1, len(mixed_types)
        width = mixed_types.shape[1]
        W = W.reshape(self.nO * self.nP, self.K, width)
        tables = [self.ops.gemm(mixed_types, self.ops.as_contig(W[:, k]), trans2=True)
                  for k in range(self.K)]
        tables.append(self.ops.alloc2f(1, self.nO * self.nP))  # pad rows and the edges
        self.table = self.ops.xp.vstack(tables)
        self.zero = self.K * self.n_types

    def block(self, row_types: np.ndarray):
        """The block's output (without the residual) at rows of these types (pad rows:
        `n_types`)."""
        w = self.K // 2
        shifted = np.concatenate([np.full(w, self.n_types), row_types,
                                  np.full(w, self.n_types)])
        keys = np.empty((len(row_types), self.K), dtype="int32")
        for k in range(self.K):
            window = shifted[k : k + len(row_types)]
            keys[:, k] = np.where(window == self.n_types, self.zero, window + k * self.n_types)
        Z = self.ops.gather_add(self.table, keys)
        Z += self.maxout.get_param("b").reshape(1, -1)
        best, _ = self.ops.maxout(Z.reshape(-1, self.nO, self.nP))
        return self.norm.predict(best)


def _token_features(docs: list, columns: list[int], key_attr: int) -> np.ndarray:
    """(tokens, columns + [vector key, ORTH]) attribute values of the batch's tokens."""
    every = [*columns, key_attr, ORTH]
    return np.concatenate([doc.to_array(every) for doc in docs if len(doc)]
                          ).astype("uint64", copy=False).reshape(-1, len(every))


def _types(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct row of `features` (word types; tokens of one ORTH nearly always share
    their features, unless a tokenizer exception set a token's own NORM) and each token's
    type."""
    _, first, inverse = np.unique(features[:, -1], return_index=True, return_inverse=True)
    types = features[first]
    if not np.array_equal(types[inverse], features):  # a token-level attribute: by row
        types, inverse = np.unique(features, axis=0, return_inverse=True)
    return types, inverse.reshape(-1)


def _static_forward(layer: Model, vocab, keys: np.ndarray, is_train: bool):
    """spaCy's StaticVectors on the distinct words: the same lookup, projection, zeroed
    rows for missing words (whose gradient still reads the table's last row, as spaCy's),
    dropout per output column."""
    ops = layer.ops
    vectors = vocab.vectors
    W = ops.as_contig(layer.get_param("W"))
    missing = None
    if isinstance(vectors, Vectors) and vectors.mode == Mode.default:
        rows = vectors.find(keys=keys)
        V = ops.as_contig(ops.asarray(vectors.data)[rows])
        missing = rows < 0
    elif hasattr(vectors, "get_batch"):
        V = ops.as_contig(vectors.get_batch(keys))
    else:
        raise NoFastPath("the vocab has no vectors table the static vectors can read")
    projected = ops.gemm(V, W, trans2=True)
    if missing is not None:
        projected[missing] = 0
    mask = None
    if is_train and layer.attrs.get("dropout_rate") is not None:
        mask = ops.get_dropout_mask((W.shape[0],), layer.attrs["dropout_rate"])
        projected *= mask

    def backprop(d_projected):
        if mask is not None:
            d_projected = d_projected * mask
        layer.inc_grad("W", ops.gemm(d_projected, V, trans1=True))

    return projected, backprop


def _embed(layers: _Layers, docs: list, lengths: list[int], is_train: bool, ops):
    """MultiHashEmbed's output for the batch's tokens (one array, documents in order), and
    its backprop: everything but the mixer's dropout computed per distinct word."""
    embed = layers.embed
    vocab = docs[0].vocab
    key_attr = getattr(vocab.vectors, "attr", ORTH)
    types, inverse = _types(_token_features(docs, layers.columns, key_attr))
    n_columns = len(layers.columns)
    hashed, bp_hashed = embed.hashed(ops.as_contig(types[:, :n_columns]), is_train)
    parts, backprops = [hashed], [bp_hashed]
    if embed.static is not None:
        projected, bp_projected = _static_forward(embed.static, vocab,
                                                  types[:, n_columns], is_train)
        parts.append(projected)
        backprops.append(bp_projected)
    return mix_per_type(embed, parts, backprops, inverse, ops, is_train)


# ---------------------------------------------------------------- the parsers' lower layer


class _DeferredLower:
    """The backward of one batch's PrecomputableAffine (the parser's lower layer), once
    for all the transition steps, per token instead of per state.

    spaCy calls it once per step: the step's states' gradients (B, nO, nP) times the whole
    transposed weight gives each state's (nF, nI) feature gradients, which are scattered
    to the tokens; the weight gradient is the states' gradients times their gathered
    (nF·nI) features; a copy of the transposed W and an add of a transposed W-sized array
    each step. Summed over the steps, both are products with the per-(token, feature)
    sums of the states' gradients, G (tokens + 1, nF, nO·nP): the tokens' gradients are
    G · W (one product of W's own layout), the weight's gradient Gᵀ · X, the padding's
    the row of the missing tokens (id -1), the bias' the states' sum. About two states per
    token in a parse: half the arithmetic, in two large products per batch instead of
    four small ones per step. (spaCy's backward reads the features of a missing token
    (-1) from the last token's row: the weight's gradient here does too.)"""

    def __init__(self, layer: Model, X, backward):
        self.layer, self.X, self.backward = layer, X, backward
        self.deferring = False
        self.recorded: list = []

    def __call__(self, dY_ids):
        if not self.deferring:
            return self.backward(dY_ids)
        self.recorded.append(dY_ids)
        return None

    def flush(self, d_tokvecs) -> None:
        """Add the recorded steps' gradients to the layer's and to `d_tokvecs` (tokens + 1
        rows: the last is the padding's)."""
        recorded, self.recorded, self.deferring = self.recorded, [], False
        if not recorded:
            return
        layer, X, ops = self.layer, self.X, self.layer.ops
        dY = np.concatenate([d for d, _ in recorded]) if len(recorded) > 1 else recorded[0][0]
        ids = np.concatenate([i for _, i in recorded]) if len(recorded) > 1 else recorded[0][1]
        n = X.shape[0]
        nF, nO, nP, nI = (layer.get_dim(d) for d in ("nF", "nO", "nP", "nI"))
        states = dY.shape[0]
        dY = ops.as_contig(dY.reshape(states, nO * nP))
        key = np.where(ids < 0, n, ids).astype("int64") * nF + np.arange(nF)
        order = np.argsort(key.reshape(-1), kind="stable")
        indptr = np.zeros((n + 1) * nF + 1, dtype="int64")
        np.cumsum(np.bincount(key.reshape(-1), minlength=(n + 1) * nF), out=indptr[1:])
        from scipy.sparse import csr_matrix

        sums = csr_matrix((np.ones(order.size, dtype="float32"), order // nF, indptr),
                          shape=((n + 1) * nF, states))
        G = np.asarray(sums @ dY, dtype="float32").reshape(n + 1, nF * nO * nP)
        W = layer.get_param("W").reshape(nF * nO * nP, nI)
        d_tokvecs += ops.gemm(G, W)
        X_missing = np.vstack([X, X[-1:]])  # a missing token's features: the last row's
        layer.inc_grad("W", ops.gemm(G, X_missing, trans1=True).reshape(nF, nO, nP, nI))
        layer.inc_grad("b", dY.sum(axis=0).reshape(nO, nP))
        layer.inc_grad("pad", G[n].reshape(1, nF, nO, nP))


_state_kernel = None  # once compiled


def _compiled_state_kernel():
    """The numba kernel of a parser step's state vectors, compiled (or loaded from
    numba's cache) on first use."""
    global _state_kernel
    if _state_kernel is not None:
        return _state_kernel

    def state_vectors(cached, ids, bias, best, which):
        # cached: (tokens + 1, nF, nO·nP), row 0 the padding; ids: (B, nF), -1 missing.
        # Each state: its features' rows summed in feature order, then the bias (spaCy's
        # saxpy per feature and `+= bias`: the same float32 sums), then the maxout (the
        # first of equal pieces, as thinc's).
        n_states, n_feats = ids.shape
        width = cached.shape[2]  # nO·nP
        n_out = best.shape[1]
        pieces = width // n_out
        acc = np.empty(width, dtype=np.float32)
        for b in range(n_states):
            for j in range(width):
                acc[j] = 0.0
            for f in range(n_feats):
                row = ids[b, f] + 1
                if row < 0:
                    row = 0
                for j in range(width):
                    acc[j] += cached[row, f, j]
            for j in range(width):
                acc[j] += bias[j]
            for o in range(n_out):
                chosen = 0
                top = acc[o * pieces]
                for p in range(1, pieces):
                    if acc[o * pieces + p] > top:
                        top = acc[o * pieces + p]
                        chosen = p
                best[b, o] = top
                which[b, o] = chosen

    _state_kernel = compiled(state_vectors)
    return _state_kernel


class _FastStateVectors:
    """A parser step's state vectors (spaCy's `precompute_hiddens`: the states' features
    summed from the lower layer's per-token outputs, its bias, the maxout) in one compiled
    pass, where spaCy calls BLAS's saxpy per state and feature; the same float32 sums.
    Its backward is spaCy's: the maxout's, then the lower layer's."""

    def __init__(self, plain, cached, bias, lower_backward):
        self.plain = plain
        self.cached = cached.reshape(cached.shape[0], cached.shape[1], -1)
        self.bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
        self.lower_backward = lower_backward
        self.kernel = _compiled_state_kernel()

    def __getattr__(self, name):  # nF, nO, nP, ops, get_dim: spaCy's object's
        return getattr(self.plain, name)

    def __call__(self, token_ids, is_train: bool):
        nO, nP = self.plain.nO, self.plain.nP
        best = np.empty((token_ids.shape[0], nO), dtype=np.float32)
        which = np.empty((token_ids.shape[0], nO), dtype=np.int32)
        self.kernel(self.cached, np.ascontiguousarray(token_ids, dtype=np.int32), self.bias,
                    best, which)
        if not is_train:
            return best, lambda X: X

        def backward(d_best_ids):
            d_best, ids = d_best_ids
            d_pieces = self.plain.ops.backprop_maxout(d_best, which, nP)
            return self.lower_backward((d_pieces, ids))

        return best, backward


class FastParserForward:
    """A forward function for spaCy's transition-based parser model (`TransitionModel`,
    `spacy.TransitionBasedParser.v2` with its PrecomputableAffine lower layer): spaCy's own
    step model, whose `finish_steps` runs the lower layer's backward once per batch (all
    the steps' rows together) and scatters the tokens' gradients once, instead of once
    per step. The same gradients, summed in another order.

    Its upper layer runs on the model's ops: spaCy rebuilds that layer on NumpyOps when
    the labels are added (`resize_output` under `use_ops("cpu")`), so its small products
    per step would otherwise go through blis while the rest of the model has BlasOps."""

    def __init__(self, plain):
        self.plain = plain

    def __call__(self, model: Model, docs, is_train: bool):
        if model.has_ref("upper"):
            upper = model.get_ref("upper")
            if upper.ops is not model.ops and type(upper.ops) is NumpyOps:
                upper.ops = model.ops
        lower = model.get_ref("lower")
        inner = lower._func
        deferred: list[_DeferredLower] = []
        outputs: list = []

        def forward(layer, X, is_train):
            Y, backward = inner(layer, X, is_train)
            deferred.append(_DeferredLower(layer, X, backward))
            outputs.append(Y)
            return Y, deferred[-1]

        lower._func = forward
        try:
            step_model, finish = self.plain(model, docs, is_train)
        finally:
            lower._func = inner
        if len(deferred) != 1 or not len(deferred[0].X):
            return step_model, finish
        recorder = deferred[0]
        if lower.get_dim("nP") > 1 and outputs[0].dtype == np.float32:  # maxout, as spaCy's
            step_model.state2vec = _FastStateVectors(step_model.state2vec, outputs[0],
                                                     lower.get_param("b"), recorder)
        if not is_train:
            return step_model, finish

        def finish_steps(golds):
            tokvecs = step_model.tokvecs
            ops = step_model.ops
            d_tokvecs = ops.alloc((tokvecs.shape[0] + 1, tokvecs.shape[1]))
            recorder.deferring = True
            for ids, d_vector, bp_vector in step_model.backprops:
                bp_vector((d_vector, ids))  # spaCy's maxout backward; the lower: recorded
            recorder.flush(d_tokvecs)
            step_model.bp_tokvecs(d_tokvecs[:-1])
            return d_tokvecs

        return step_model, finish_steps


def greedy_parse(parser, docs: list) -> list:
    """spaCy's greedy decoding (`Parser.greedy_parse`), each step's scores computed by the
    parser's own step model on the model's ops: one matrix product over all the batch's
    unfinished states per step, where spaCy's C loop calls BLIS per step with its own
    kernels (the generic ones on CPUs BLIS does not recognise). The same transitions from
    the same scores: spaCy's `transition_states` applies them; the step model is the one
    spaCy's beam search steps."""
    if not any(len(doc) for doc in docs):
        return parser.moves.init_batch(docs)
    parser._ensure_labels_are_added(docs)
    set_dropout_rate(parser.model, 0.0)
    batch = parser.moves.init_batch(docs)
    step_model = parser.model.predict(docs)
    states = [state for state in batch if not state.is_final()]
    while states:
        states = parser.transition_states(states, step_model.predict(states))
    step_model.clear_memory()
    return batch


def _decodes_greedily(proc) -> bool:
    """A transition-based component on the fast parser forward (under any wrappers that
    name it as their `__wrapped__`), with greedy decoding."""
    model = getattr(proc, "model", None)
    return (isinstance(model, Model) and isinstance(inspect.unwrap(model._func), FastParserForward)
            and getattr(proc, "cfg", {}).get("beam_width", 1) == 1)


def pipe(nlp, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
    """`nlp.pipe(docs)` for Docs, with `greedy_parse` for the transition-based components
    on the fast path; a pipeline without any is spaCy's own `nlp.pipe`."""
    if not any(_decodes_greedily(proc) for _, proc in nlp.pipeline):
        yield from nlp.pipe(docs, batch_size=batch_size)
        return
    size = batch_size or nlp.batch_size
    for batch in minibatch(docs, size):
        for _, proc in nlp.pipeline:
            if _decodes_greedily(proc):
                proc.set_annotations(batch, greedy_parse(proc, batch))
            elif hasattr(proc, "pipe"):
                batch = list(proc.pipe(batch, batch_size=size))
            else:  # a function component, as spaCy calls it
                batch = [proc(doc) for doc in batch]
        yield from batch


def _parser_models(nlp) -> list[Model]:
    """The pipeline's transition-based models the parser fast path fits: spaCy's
    TransitionModel with a PrecomputableAffine lower layer, on numpy ops."""
    found = []
    for _, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if not isinstance(model, Model) or model.name != "parser_model":
            continue
        if not (model.has_ref("lower") and model.get_ref("lower").name == "precomputable_affine"):
            continue
        if isinstance(model.ops, NumpyOps):
            found.append(model)
    return found


# ---------------------------------------------------------------- installing it


def fast_path_of(model: Model) -> FastTok2VecForward | None:
    return model._func if isinstance(model._func, FastTok2VecForward) else None


def install_fast_path(nlp) -> str | None:
    """Run the pipeline's tok2vec on the fast path; return None, or why it stays on spaCy's
    plain forward (no tok2vec, another architecture, ops other than numpy's). The
    pipeline's transition-based parsers get their fast backward (`FastParserForward`)
    either way."""
    for parser in _parser_models(nlp):
        if not isinstance(parser._func, FastParserForward):
            parser._func = FastParserForward(parser._func)
    if "tok2vec" not in nlp.pipe_names:
        return "no tok2vec component"
    model = nlp.get_pipe("tok2vec").model
    if fast_path_of(model) is not None:
        return None
    if not isinstance(model.ops, NumpyOps):
        return f"the fast path runs on numpy ops, not {type(model.ops).__name__}"
    try:
        layers = _Layers.of(model)
    except NoFastPath as err:
        return str(err)
    model._func = FastTok2VecForward(model._func)
    with contextlib.suppress(NoFastPath):  # else the blocks run on thinc's own layers
        install_fused_blocks(layers.residuals)
    return None


def remove_fast_path(nlp) -> None:
    """Put the tok2vec and the parsers back on spaCy's plain forward."""
    for parser in _parser_models(nlp):
        if isinstance(parser._func, FastParserForward):
            parser._func = parser._func.plain
    if "tok2vec" in nlp.pipe_names:
        model = nlp.get_pipe("tok2vec").model
        fast = fast_path_of(model)
        if fast is not None:
            remove_fused_blocks(fast.layers(model).residuals)
            model._func = fast.plain
