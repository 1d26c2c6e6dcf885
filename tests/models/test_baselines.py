"""BPR-MF and the popularity baseline."""

from __future__ import annotations

import torch

from models.base import InteractionBatch, RecModel
from tests.models.cases import RecModelCase, batch


class TestBPRMF(RecModelCase):
    name = "bprmf"
    hyper = {"embedding_dim": 3}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        u, i = model.user.weight[user].tolist(), model.item.weight[item].tolist()
        return sum(a * b for a, b in zip(u, i, strict=True))

    def test_loss_is_bpr_plus_l2(self) -> None:
        model = self.make(l2=0.5)
        b = batch()
        u, i, j = model.user(b.users), model.item(b.pos_items), model.item(b.neg_items)
        bpr = -torch.log(torch.sigmoid((u * i).sum(1) - (u * j).sum(1))).mean()
        l2 = 0.5 * (u.pow(2).sum() + i.pow(2).sum() + j.pow(2).sum()) / (2 * len(b))
        torch.testing.assert_close(model.loss(b), bpr + l2)

    def test_softmax_loss_over_several_negatives(self) -> None:
        model = self.make(l2=0.5, cf_loss="softmax", temperature=0.5)
        b = batch()
        several = InteractionBatch(b.users, b.pos_items, torch.stack([b.neg_items, b.pos_items.flip(0)], dim=1))
        u, i, j = model.user(b.users), model.item(b.pos_items), model.item(several.neg_items)
        logits = torch.cat([(u * i).sum(1, keepdim=True), torch.einsum("bd,bnd->bn", u, j)], dim=1) / 0.5
        softmax = -torch.log_softmax(logits, dim=1)[:, 0].mean()
        l2 = 0.5 * (u.pow(2).sum() + i.pow(2).sum() + j.pow(2).sum()) / (2 * len(b))
        torch.testing.assert_close(model.loss(several), softmax + l2)


class TestPopularity(RecModelCase):
    name = "pop"

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        return float(sum(1 for _, i in batch_positives() if i == item))

    def test_counts_only_in_training_mode(self) -> None:
        model = self.make()
        model.eval()
        model.loss(batch())
        assert float(model.counts.sum()) == 0


def batch_positives() -> list[tuple[int, int]]:
    b = batch()
    return list(zip(b.users.tolist(), b.pos_items.tolist(), strict=True))
