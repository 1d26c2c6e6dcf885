"""Popularity baseline: every user gets the items with the most training interactions.

``s(u, i) = #{training users of i}``. It has no parameters; the trainer fits it in one pass over the
training pairs (each pair counted once), and the evaluator's realistic ranks treat equal counts as ties.
"""

from __future__ import annotations

import torch

from models.base import InteractionBatch, RecModel
from models.paths import PathSet
from models.typing import FloatTensor, LongTensor


class Popularity(RecModel):
    trainable = False
    precisions = ("fp32", "bf16")  # it counts: no floating-point training to lose precision in

    def __init__(self, *, num_users: int, num_items: int) -> None:
        super().__init__(num_users=num_users, num_items=num_items)
        self.register_buffer("counts", torch.zeros(num_items))

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        """Counts the batch's positives (training mode only); returns 0."""
        if self.training:
            self.counts.index_add_(0, batch.pos_items, torch.ones_like(batch.pos_items, dtype=self.counts.dtype))
        return self.counts.new_zeros(())

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        return self.counts[items]  # (B,)

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """Popularity knows no KG: shorter paths first."""
        return -paths.length.float()

    def score_all(self, users: LongTensor) -> FloatTensor:
        return self.counts.expand(len(users), -1)  # (B, num_items)
