"""What each token is trained to predict (a static vector, or several), and the loss."""

from __future__ import annotations

import numpy as np
from spacy.vectors import Vectors
from thinc.api import CosineDistance, L2Distance, Ops, get_array_module

from ..settings import OBJECTIVE_COLUMNS, PretrainSettings
from ..vectors import targets_for_types


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

    @classmethod
    def for_store(cls, types: list[str], table: Vectors, settings: PretrainSettings, ops: Ops,
                  objective: str | None = None) -> VectorObjective:
        """The objective over a token store's types and a vectors table, on `ops`' device:
        each type's target row (its lowercase form's where the run says so), the run's loss
        and objective (or `objective`). Pre-training and the multi-task auxiliary loss both
        build theirs here."""
        matrix, rows_by_type = targets_for_types(types, table,
                                                 settings.target_lookup == "lowercase")
        return cls(ops.asarray(matrix), ops.asarray(rows_by_type), settings.loss,
                   objective or settings.objective)

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
        xp = get_array_module(prediction)
        target = self.table[rows].reshape(len(rows), -1)  # row -1 is the zero row
        # Arithmetic, not boolean-mask assignment, which waits for the GPU on every batch.
        if self.loss == "cosine":
            target *= known[:, None]  # zero rows are ignored by CosineDistance(ignore_zeros)
        else:
            missing = (rows < 0) | ~known[:, None]
            missing = missing.repeat(self.table.shape[1], axis=1)
            target = xp.where(missing, prediction, target)  # zero gradient without a target
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
