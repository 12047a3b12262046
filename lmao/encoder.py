"""The encoder architecture, defined once for pre-training and fine-tuning alike.

Checkpoints are spaCy tok2vec bytes, which only load into a model of exactly the same
shape; both sides therefore build the model from `tok2vec_config`.
"""

from __future__ import annotations

from typing import Any

from spacy.util import registry
from thinc.api import Model, chain
from thinc.types import Floats2d

from .settings import EncoderSettings


def tok2vec_config(settings: EncoderSettings) -> dict[str, Any]:
    """The `[components.tok2vec.model]` block of a spaCy config for these settings."""
    if len(settings.attrs) != len(settings.rows):
        raise ValueError("encoder attrs and rows must have the same length")
    return {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": settings.width,
            "attrs": list(settings.attrs),
            "rows": list(settings.rows),
            "include_static_vectors": settings.include_static_vectors,
        },
        "encode": _encode_config(settings),
    }


def _encode_config(settings: EncoderSettings) -> dict[str, Any]:
    if settings.architecture == "bilstm":
        return {"@architectures": "lmao.BiLSTMEncoder.v1", "width": settings.width,
                "depth": settings.depth, "max_length": settings.max_length, "dropout": 0.0}
    if settings.architecture != "cnn":
        raise ValueError(f"encoder architecture {settings.architecture!r}: expected cnn/bilstm")
    return {
        "@architectures": "spacy.MaxoutWindowEncoder.v2",
        "width": settings.width,
        "depth": settings.depth,
        "window_size": settings.window_size,
        "maxout_pieces": settings.maxout_pieces,
    }


def build_tok2vec(settings: EncoderSettings) -> Model:
    """A fresh (uninitialised) tok2vec model: Docs in, one array per Doc out."""
    return registry.resolve({"model": tok2vec_config(settings)})["model"]


# ---------------------------------------------------------------- the BiLSTM encoder


@registry.architectures("lmao.BiLSTMEncoder.v1")
def bilstm_encoder(width: int, depth: int, max_length: int = 200,
                   dropout: float = 0.0) -> Model[list[Floats2d], list[Floats2d]]:
    """A left-to-right and a right-to-left LSTM stack, each of width/2, outputs concatenated.

    The two directions never mix (unlike a stacked bidirectional LSTM), so the first half
    of a token's output has seen only the tokens up to it and the second half only the
    tokens from it on: that is what lets pre-training ask the first half for the next
    word and the second half for the previous one. Sequences longer than `max_length` are
    encoded in chunks of at most that many tokens.
    """
    from thinc.api import LSTM, concatenate, with_padded

    if width % 2:
        raise ValueError(f"the BiLSTM width must be even, got {width}")
    forward = with_padded(LSTM(nO=width // 2, nI=width, depth=depth, dropout=dropout))
    backward = chain(reverse_each(), with_padded(LSTM(nO=width // 2, nI=width, depth=depth,
                                                      dropout=dropout)), reverse_each())
    model = in_chunks(concatenate(forward, backward), max_length)
    model.set_dim("nO", width)
    return model


def reverse_each() -> Model[list[Floats2d], list[Floats2d]]:
    """Reverse each sequence in a list (and the gradients on the way back)."""

    def forward(model: Model, X: list[Floats2d], is_train: bool):
        return [x[::-1] for x in X], lambda dY: [dy[::-1] for dy in dY]

    return Model("reverse_each", forward)


def in_chunks(layer: Model, max_length: int) -> Model[list[Floats2d], list[Floats2d]]:
    """Run `layer` on pieces of at most `max_length` rows of each sequence."""

    def split(X: list[Floats2d]) -> list[Floats2d]:
        return [x[i : i + max_length] for x in X for i in range(0, max(len(x), 1), max_length)]

    def join(pieces: list[Floats2d], lengths: list[int], xp) -> list[Floats2d]:
        joined, k = [], 0
        for length in lengths:
            n = max(-(-length // max_length), 1)
            joined.append(xp.concatenate(pieces[k : k + n]) if n > 1 else pieces[k])
            k += n
        return joined

    def forward(model: Model, X: list[Floats2d], is_train: bool):
        lengths = [len(x) for x in X]
        Y, backprop = layer(split(X), is_train)
        xp = model.ops.xp
        return join(Y, lengths, xp), lambda dY: join(backprop(split(dY)), lengths, xp)

    def init(model: Model, X=None, Y=None) -> None:
        layer.initialize(X=X, Y=Y)

    return Model(f"in_chunks({layer.name})", forward, init=init, layers=[layer],
                 dims={"nO": None}, attrs={"max_length": max_length})
