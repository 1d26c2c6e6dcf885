"""Train and evaluate one model on :class:`~models.data.RecData`: what ``kgrec train`` and the benchmark run.

- Recommenders train on the ``train`` pairs with uniform negatives drawn from the *warm* items (the
  cold-start items are new to the model: never a training negative, never a warm ranking candidate),
  validated on ``valid`` by the protocol's metric (ranking: ``recall@20``; ctr: ``auc``).
- KG embeddings train on 90% of the triples and are validated and tested by filtered link prediction
  (``mrr``) on 5% + 5% held out (:func:`split_triples`).
- :func:`evaluate` reports the protocol's metrics on ``test`` and, when there are cold-start items, on
  ``cold_test`` (ranked among the cold items only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from models import MODELS
from models.base import KGEModel, RecModel
from models.data import RecData
from models.evaluation import RankingEvaluator, ctr_metrics
from models.graph import KnowledgeGraph
from models.linkpred import link_prediction
from models.sampling import (
    NegativeSampler,
    PairSet,
    interaction_batches,
    joint_batches,
    num_batches,
    triple_batches,
)
from models.trainer import Phase, TrainConfig, Trainer, TrainResult, resolve_device, training_device
from models.typing import LongTensor, Protocol

Triples = tuple[LongTensor, LongTensor, LongTensor]  # (h, r, t), each shape (T,)
VALID_METRIC = {"ranking": "recall@20", "ctr": "auc", "triples": "mrr"}
KGE_HOLDOUT = 0.05
SPLIT_STREAM = {"valid": 1, "test": 2, "cold_test": 3}  # a separate seeded stream of ctr negatives per split


@dataclass
class Fitted:
    model: RecModel | KGEModel
    result: TrainResult
    data: RecData


def build_model(name: str, data: RecData, hyper: dict[str, Any], *, seed: int) -> RecModel | KGEModel:
    """``name`` built from ``data``; a model that samples KG structure samples it with ``seed`` (unless
    ``hyper`` names its own), so runs with different seeds differ in the sample as well as the init."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    if cls.samples_graph:
        hyper = {"seed": seed, **hyper}
    return cls.from_data(data, **hyper)


def warm_items(data: RecData) -> LongTensor:
    cold = data.cold_items
    return torch.arange(data.num_items)[~torch.isin(torch.arange(data.num_items), cold)]


def fit(
    name: str,
    data: RecData,
    *,
    protocol: Protocol,
    hyper: dict[str, Any],
    config: TrainConfig,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Fitted:
    """Build ``name`` (seeded by ``config.seed``) and train it to early stopping."""
    torch.manual_seed(config.seed)
    model = build_model(name, data, hyper, seed=config.seed)
    device = training_device(config)
    if isinstance(model, KGEModel):
        full = data.kg
        train_kg, valid, _ = split_triples(full, seed=config.seed)
        train_kg = train_kg.to(device)
        phases = [Phase("kg", lambda g: triple_batches(train_kg, config.batch_size, g), model.loss,
                        num_batches(train_kg.num_triples, config.batch_size), "kg" in model.graph_phases)]
        validate = link_validation(valid, full)
        metric = VALID_METRIC["triples"]
    else:
        phases = interaction_phases(model, data, config, device)
        validate = rec_validation(data, protocol, "valid", config)
        metric = VALID_METRIC[protocol]
    trainer = Trainer(model, phases, validate, metric=metric, config=config, out_dir=out_dir, progress=progress)
    return Fitted(model, trainer.fit(resume=resume), data)


def interaction_phases(model: RecModel, data: RecData, config: TrainConfig, device: torch.device | str = "cpu"
                       ) -> list[Phase]:
    """The CF phase, and a model's KG loss: its own phase after it (``"alternate"``) or in it (``"joint"``). The
    pairs, the sampler's tables and the triples are put on ``device`` once: every epoch is drawn there."""
    if config.negatives > 1 and not model.multi_negative:
        takes = ", ".join(name for name, cls in MODELS.items() if getattr(cls, "multi_negative", False))
        raise ValueError(f"{type(model).__name__} trains on one negative per positive, got train.negatives="
                         f"{config.negatives}; models that take several: {takes}")
    train = data.train
    sampler = NegativeSampler(PairSet(train.users, train.items, data.num_items), data.num_users,
                              warm_items(data)).to(device)
    users, items = train.users.to(device), train.items.to(device)
    cf = lambda g: interaction_batches(users, items, sampler, config.batch_size, g, config.negatives)  # noqa: E731
    size = num_batches(len(train), config.batch_size)
    graphed = lambda name: name in model.graph_phases  # noqa: E731
    if model.kg_phase is None:
        return [Phase("cf", cf, model.loss, size, graphed("cf"))]
    triples = model.kg_triples().to(device)
    if model.kg_phase == "joint":
        return [Phase("cf+kg", lambda g: joint_batches(cf(g), triples, g),
                      lambda b: model.loss(b.interactions) + model.kg_loss(b.triples), size, graphed("cf+kg"))]
    if model.kg_phase == "alternate":
        return [Phase("cf", cf, model.loss, size, graphed("cf")),
                Phase("kg", lambda g: triple_batches(triples, config.batch_size, g, corrupt="tail"), model.kg_loss,
                      num_batches(triples.num_triples, config.batch_size), graphed("kg"))]
    raise ValueError(f"{type(model).__name__}.kg_phase must be None, 'joint' or 'alternate', got {model.kg_phase!r}")


def rec_validation(data: RecData, protocol: Protocol, split: str, config: TrainConfig
                   ) -> Callable[[torch.nn.Module], dict[str, float]]:
    """The metric function of one split under one protocol (negatives for ctr drawn once, seeded)."""
    device = resolve_device(config.device)
    targets = data.splits[split]
    cold = split == "cold_test"
    candidates = data.cold_items if cold else warm_items(data)
    if protocol == "ranking":
        known = [] if cold else [data.splits[s] for s in (("train",) if split == "valid" else ("train", "valid"))]
        ranked = None if len(candidates) == data.num_items else candidates  # None: every item, no column gather
        return RankingEvaluator(targets, known, num_users=data.num_users, num_items=data.num_items,
                                candidates=ranked, batch_users=config.eval_batch_users, device=device)
    everything = [data.splits[s] for s in data.splits]
    positives = PairSet(torch.cat([p.users for p in everything]), torch.cat([p.items for p in everything]),
                        data.num_items)
    generator = torch.Generator().manual_seed(config.seed + SPLIT_STREAM[split])  # same negatives every epoch
    negatives = NegativeSampler(positives, data.num_users, candidates).sample(targets.users, generator)
    return lambda model: ctr_metrics(model, targets, negatives, device=device)


def evaluate(model: RecModel, data: RecData, protocol: Protocol, config: TrainConfig,
             splits: tuple[str, ...] = ("test", "cold_test")) -> dict[str, dict[str, float]]:
    """Metrics per split (a split with no pairs, or cold_test without cold items, is skipped), with timings."""
    out = {}
    for split in splits:
        if not len(data.splits[split]) or (split == "cold_test" and not len(data.cold_items)):
            continue
        began = time.perf_counter()
        metrics = rec_validation(data, protocol, split, config)(model)
        out[split] = {**metrics, "seconds": round(time.perf_counter() - began, 3)}
    return out


def evaluate_links(model: KGEModel, data: RecData, config: TrainConfig) -> dict[str, dict[str, float]]:
    """Filtered link prediction on the test triples :func:`fit` held out (the same seeded split)."""
    _, _, test = split_triples(data.kg, seed=config.seed)
    began = time.perf_counter()
    metrics = link_validation(test, data.kg)(model)
    return {"test": {**metrics, "triples": len(test[0]), "seconds": round(time.perf_counter() - began, 3)}}


def split_triples(kg: KnowledgeGraph, *, seed: int, share: float = KGE_HOLDOUT
                  ) -> tuple[KnowledgeGraph, Triples, Triples]:
    """(train graph, valid, test) for link prediction: ``share`` of the triples each for valid and test."""
    order = torch.randperm(kg.num_triples, generator=torch.Generator().manual_seed(seed))
    n_hold = int(kg.num_triples * share)
    parts = order[n_hold * 2 :], order[:n_hold], order[n_hold : 2 * n_hold]
    train = replace(kg, heads=kg.heads[parts[0]], relations=kg.relations[parts[0]], tails=kg.tails[parts[0]])
    pick = lambda idx: (kg.heads[idx], kg.relations[idx], kg.tails[idx])  # noqa: E731
    return train, pick(parts[1]), pick(parts[2])


def link_validation(held_out: Triples, full: KnowledgeGraph) -> Callable[[torch.nn.Module], dict[str, float]]:
    """Filtered link prediction on ``held_out``, every triple of ``full`` counted as known."""
    def validate(model: torch.nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        on = lambda triples: tuple(x.to(device) for x in triples)  # noqa: E731
        return link_prediction(model, on(held_out), on((full.heads, full.relations, full.tails)))

    return validate
