"""Multi-task LMAO: the pre-training objective as an auxiliary loss during task training.

Instead of pre-training first, every task batch is followed by a batch of unlabelled text on
which the shared tok2vec predicts each (masked) token's static vector. Its gradients, scaled
by `weight`, add to the task's in the same tok2vec before the optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from spacy.tokens import Doc
from thinc.api import Model, Optimizer, get_current_ops

from .pretrain import (
    MASK_WORD,
    Masker,
    PretrainSettings,
    VectorObjective,
    WordStream,
    lmao_step,
    output_layer,
    select_rows,
)
from .store import TokenStore
from .vectors import load_table


@dataclass(frozen=True)
class AuxiliarySettings:
    """One `finetune.multitask` entry: unlabelled text, target vectors and the loss's weight."""

    store: Path
    vectors: Path
    weight: float = 1.0
    batch_words: int = 1000
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)

    @classmethod
    def from_dict(cls, data: dict[str, Any], store: str | Path, vectors: str | Path
                  ) -> AuxiliarySettings:
        settings = PretrainSettings.from_dict({**data.get("settings", {}), "encoder": None})
        if settings.objective != "own_word":
            raise ValueError("multitask: only the own_word objective is supported")
        return cls(Path(store), Path(vectors), float(data.get("weight", 1.0)),
                   int(data.get("batch_words", 1000)), settings)


class AuxiliaryLMAO:
    """The auxiliary objective attached to a pipeline's tok2vec model."""

    def __init__(self, tok2vec: Model, vocab, settings: AuxiliarySettings, seed: int):
        ops = get_current_ops()
        self.tok2vec, self.vocab, self.settings = tok2vec, vocab, settings
        self.store = TokenStore(settings.store)
        table = load_table(settings.vectors)
        self.objective = VectorObjective.for_store(self.store.types, table, settings.pretrain,
                                                   ops, "own_word")
        self.head = output_layer(settings.pretrain, self.objective.width)
        self.stream = WordStream(self.store, seed, shuffle=True,
                                 max_doc_length=settings.pretrain.max_doc_length,
                                 max_epochs=10**6)
        self.masker = Masker(settings.pretrain.mask_prob, len(self.store.types), seed)
        self.input_types = [*self.store.types, MASK_WORD]
        sample = self.tok2vec.predict([Doc(vocab, words=self.store.words(self.store.doc(0)[:50]))])
        self.head.initialize(X=self.tok2vec.ops.flatten(sample))

    def update(self) -> float:
        """One batch of unlabelled text: accumulate the weighted gradients in tok2vec and
        the head (applied by `finish_update`); return the batch's summed loss."""
        def encode(inputs, lengths: list[int], trained):
            splits = np.split(inputs, np.cumsum(lengths)[:-1])
            docs = [Doc(self.vocab, words=[self.input_types[i] for i in seg]) for seg in splits]
            encoded, bp_encoded = self.tok2vec.begin_update(docs)
            rows, bp_select = select_rows(self.tok2vec.ops, encoded, trained)
            return rows, lambda d_rows: bp_encoded(bp_select(d_rows))

        _ids, token_loss, _known = lmao_step(
            self.tok2vec.ops, self.stream, self.store.tokens, self.masker, encode, self.head,
            self.objective, self.settings.batch_words, weight=self.settings.weight)
        return float(token_loss.sum())

    def finish_update(self, optimizer: Optimizer) -> None:
        self.head.finish_update(optimizer)
