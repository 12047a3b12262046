"""What each step is asked to do, as typed settings: plain data, no spaCy, so the workflow
can build its DAG, and a config can be checked, without loading the models.

A config's slices become these (`lmao.grid`); the code that runs a step reads them
(`lmao.encoder` builds the model an `EncoderSettings` describes, `lmao.pretrain` trains
as a `PretrainSettings` says).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

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
    architecture: str = "cnn"  # or "bilstm"
    max_length: int = 200  # the BiLSTM encodes longer sequences in chunks of this length

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EncoderSettings:
        return cls(**(data or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- pre-training

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
        if settings.target_lookup not in ("exact", "lowercase"):
            raise ValueError(f"target_lookup {settings.target_lookup!r}: expected exact/lowercase")
        if settings.on_changed_settings not in ("error", "restart"):
            raise ValueError(f"on_changed_settings {settings.on_changed_settings!r}: expected "
                             "error/restart")
        if settings.loss not in LOSSES:
            raise ValueError(f"loss {settings.loss!r}: expected one of {LOSSES}")
        return settings


# ---------------------------------------------------------------- fine-tuning

# Every fine-tuning hyper-parameter and its value where a config does not set it; a job's
# params hold them merged (`lmao.jobs.FinetuneJob`), so the defaults are part of its identity.
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "learn_rate": 0.001,
    "batch_words": 1000,
    "dropout": 0.2,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "L2": 0.01,
    "grad_clip": 1.0,
    "encoder_lr_scale": 1.0,  # the shared tok2vec learns at learn_rate × this
    "freeze_encoder_epochs": 0,  # the tok2vec stays as initialised for this many epochs
    "min_updates_per_epoch": 50,  # smaller batches where batch_words would give fewer
}


def batch_words_for(hyperparameters: dict[str, Any], train_words: float) -> int:
    """The batch a fine-tune trains with: `batch_words`, made smaller where the training set
    would otherwise give fewer than `min_updates_per_epoch` updates an epoch (a 2,000-tweet
    set in 1,000-word batches gets ~30; a run of a few epochs would end before the model
    learns). `lmao.finetune` trains with it; `lmao.cost` plans with it."""
    hp = {**DEFAULT_HYPERPARAMETERS, **hyperparameters}
    floor = int(hp.get("min_updates_per_epoch") or 0)
    if floor <= 0:
        return int(hp["batch_words"])
    return max(1, min(int(hp["batch_words"]), int(train_words) // floor))
