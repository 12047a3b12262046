"""The encoder architecture, defined once for pre-training and fine-tuning alike.

Checkpoints are spaCy tok2vec bytes, which only load into a model of exactly the same
shape; both sides therefore build the model from `tok2vec_config`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from spacy.util import registry
from thinc.api import Model

DEFAULT_ATTRS = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
DEFAULT_ROWS = [5000, 1000, 2500, 2500]


@dataclass(frozen=True)
class EncoderSettings:
    """spaCy's CNN tok2vec: hash embeddings + maxout/layer norm, then residual window CNN."""

    width: int = 96
    depth: int = 4
    window_size: int = 1
    maxout_pieces: int = 3
    attrs: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRS))
    rows: list[int] = field(default_factory=lambda: list(DEFAULT_ROWS))
    include_static_vectors: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EncoderSettings:
        return cls(**(data or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        "encode": {
            "@architectures": "spacy.MaxoutWindowEncoder.v2",
            "width": settings.width,
            "depth": settings.depth,
            "window_size": settings.window_size,
            "maxout_pieces": settings.maxout_pieces,
        },
    }


def build_tok2vec(settings: EncoderSettings) -> Model:
    """A fresh (uninitialised) tok2vec model: Docs in, one array per Doc out."""
    return registry.resolve({"model": tok2vec_config(settings)})["model"]
