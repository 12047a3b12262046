"""The pre-training model: spaCy's tok2vec, then an output head to the targets' width."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from spacy.vocab import Vocab
from thinc.api import (
    Linear,
    Maxout,
    Model,
    Ops,
    chain,
    concatenate,
    list2array,
    zero_init,
)

from ..encoder import build_tok2vec
from ..settings import PretrainSettings
from .objective import VectorObjective

if TYPE_CHECKING:  # (stream imports nothing of the model; only the types are needed here)
    from .stream import Masker, WordStream


def input_vocab(lang: str = "en") -> Vocab:
    """The vocab input Docs are built with: the language's, as in a spaCy pipeline, whose
    lexical attribute getters give NORM, PREFIX, SUFFIX and SHAPE. (A bare `Vocab()` leaves
    them all 0, so every word would embed alike and only the mean target could be learnt.)"""
    import spacy

    return spacy.blank(lang).vocab



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

    def forward(model: Model, X, is_train: bool):
        def backprop(dY):
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
                  trained, heads=None, weight: float = 1.0):
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


def lmao_step(ops: Ops, stream: WordStream, tokens: np.ndarray, masker: Masker, encode,
              output: Model, objective: VectorObjective, n_words: int,
              has_target: np.ndarray | None = None, parse: np.ndarray | None = None,
              weight: float = 1.0):
    """One batch of the LMAO objective, as pre-training and the multi-task auxiliary loss
    both run it: the stream's next `n_words` words, masked; encoded by `encode(input ids,
    lengths, trained positions) -> (rows at those positions, their backprop)`; the output
    layer and the loss on the trained tokens only (with `has_target`, only those whose
    own form has a target vector: the rest send no gradient); gradients accumulated in the
    encoder and the output layer, not applied. Returns (token ids, losses, target flags)."""
    segments = stream.take(n_words)
    lengths = [len(s) for s in segments]
    host_ids = stream.gather(tokens, segments)
    host_inputs, trained = masker(host_ids)
    if trained is not None and has_target is not None:  # no target: no gradient, not computed
        trained = trained[has_target[host_ids[trained]]]
    ids = ops.asarray(host_ids)
    if trained is not None:
        trained = ops.xp.asarray(trained)
    rows, bp_rows = encode(host_inputs, lengths, trained)
    heads = None if parse is None else ops.asarray(stream.gather(parse, segments))
    d_rows, token_loss, known = update_output(output, objective, rows, ids, lengths, trained,
                                              heads, weight)
    bp_rows(d_rows)
    return host_ids, token_loss, known


def select_rows(ops: Ops, encoded: list, trained):
    """The rows of a list of encodings at `trained` (flat positions; None: all), and the
    backprop from those rows' gradients to the list's."""
    lengths = ops.asarray1i([len(x) for x in encoded])
    flat = ops.flatten(encoded)
    if trained is None:
        return flat, lambda d_rows: ops.unflatten(d_rows, lengths)

    def backprop(d_rows):
        d_flat = ops.alloc2f(*flat.shape)
        d_flat[trained] = d_rows
        return ops.unflatten(d_flat, lengths)

    return flat[trained], backprop
