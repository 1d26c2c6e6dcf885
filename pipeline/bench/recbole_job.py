"""One RecBole 1.2.1 training job on kgrec's atomic files; run inside the peer venv by ``recbole_peer.run_peer``.

Standalone: imports only the standard library, RecBole and what RecBole is built on (torch, numpy), never kgrec.
RecBole is imported in :func:`main` after the arguments are parsed, so ``--help`` works without it.

The data are ``DATA_PATH/DATASET/`` as written by ``kg_build.export.recbole``: the pre-split
``DATASET.{train,valid,test}.inter`` (read through ``benchmark_filename``, so RecBole neither filters nor
re-splits them), ``DATASET.kg``, ``DATASET.link`` and ``DATASET.yaml`` (loaded as a config file). The job reads
them through a folder of its own (:func:`job_data`) holding an item file of the warm catalogue (kgrec's items
but the cold-start ones, so that both sides rank and draw negatives from the same items) and only the link rows
RecBole can merge.

- ``ranking``: full ranking over the warm catalogue, the user's train items masked (train and valid items on the test
  set), Recall/NDCG/Precision/Hit/MRR@20, early stopping on Recall@20.
- ``ctr``: one uniformly sampled negative per positive (``uni1``), GAUC from RecBole (also the early-stopping
  metric), plus a global ``auc`` (Mann-Whitney, ties at average rank) and ``f1`` (sigmoid(score) > 0.5) over the
  test positives and one negative each, drawn (seeded) from the items the user has no interaction with in any split.

The result JSON (``--out``) also holds the trainer class RecBole picked, the wall seconds of each training epoch and
their mean, the seconds of one evaluation of the test set, the epochs run, the best epoch (1-based), the peak RSS
and the effective hyperparameters. (KGAT's test evaluation reuses the propagated embeddings its checkpoint holds,
so its ``eval_s`` leaves the propagation out.) RecBole's tensorboard folder and checkpoints go to a temporary
working directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("recbole_job")

DEFAULT_SEED = 2026
TOPK = 20
RANKING_METRICS = ["Recall", "NDCG", "Precision", "Hit", "MRR"]
# Settings that make RecBole use exactly kgrec's split and data: no filtering, no re-splitting, CPU.
ENFORCED: dict[str, Any] = {
    "benchmark_filename": ["train", "valid", "test"],
    "user_inter_num_interval": "[0,inf)",
    "item_inter_num_interval": "[0,inf)",
    "entity_kg_num_interval": "[0,inf)",
    "relation_kg_num_interval": "[0,inf)",
    "val_interval": None,
    "rm_dup_inter": None,
    "filter_inter_by_user_or_item": False,
    "threshold": None,
    "kg_reverse_r": False,
    "normalize_all": False,
    "gpu_id": "",
    "use_gpu": False,
    "reproducibility": True,
    "show_progress": False,
    "save_dataset": False,
    "save_dataloaders": False,
}
DEFAULTS: dict[str, Any] = {"seed": DEFAULT_SEED, "metric_decimal_place": 6}
# eval_args' split is required by RecBole's config check but unused: benchmark_filename gives the split.
PROTOCOL_CONFIG: dict[str, dict[str, Any]] = {
    "ranking": {
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
        "metrics": RANKING_METRICS,
        "topk": [TOPK],
        "valid_metric": f"Recall@{TOPK}",
    },
    "ctr": {
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "uni1"},
        "metrics": ["GAUC"],
        "valid_metric": "GAUC",
    },
}
# Training settings reported with the model's own hyperparameters (its properties/model/<Model>.yaml keys).
TRAINING_KEYS = (
    "seed", "epochs", "train_batch_size", "learner", "learning_rate", "weight_decay", "stopping_step", "eval_step",
    "train_neg_sample_args", "eval_batch_size", "valid_metric",
)
PREDICT_BATCH = 4096


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The job's command line."""
    parser = argparse.ArgumentParser(description="Train and evaluate one RecBole model on kgrec's atomic files.")
    parser.add_argument("--data-path", type=Path, required=True, help="folder holding DATASET/")
    parser.add_argument("--dataset", required=True, help="dataset name (the atomic files' prefix)")
    parser.add_argument("--model", required=True, help="RecBole model name, e.g. KGCN")
    parser.add_argument("--protocol", choices=sorted(PROTOCOL_CONFIG), required=True)
    parser.add_argument("--config", type=Path, required=True, help="JSON file of RecBole config entries")
    parser.add_argument("--out", type=Path, required=True, help="where to write the result JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; 0 when the result JSON is written."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # RecBole's checkpoints hold its Config
    warnings.filterwarnings("ignore", category=FutureWarning)  # pandas' and torch's notes on RecBole's 2023 code
    out = args.out.resolve()
    overrides = json.loads(args.config.read_text(encoding="utf-8"))
    source = args.data_path.resolve()
    del sys.argv[1:]  # RecBole's Config reads --key=value overrides from the command line
    with tempfile.TemporaryDirectory(prefix="recbole-job-") as work:
        os.chdir(work)  # RecBole writes ./log_tensorboard and the checkpoints here
        yaml_file = job_data(source, args.dataset, Path(work) / "data") / args.dataset / f"{args.dataset}.yaml"
        config = job_config(yaml_file, args.protocol, overrides, Path(work))
        result = run(args.model, args.dataset, args.protocol, yaml_file, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    log.info("result: %s", json.dumps(result["metrics"]))
    return 0


def job_config(yaml_file: Path, protocol: str, overrides: dict[str, Any], work: Path) -> dict[str, Any]:
    """RecBole config entries: defaults < ``overrides`` < the protocol's evaluation, :data:`ENFORCED` and paths.

    ``yaml_file`` is ``DATA_PATH/DATASET/DATASET.yaml``; checkpoints go to ``work/saved``.
    """
    fixed = {
        **PROTOCOL_CONFIG[protocol],
        **ENFORCED,
        "data_path": str(yaml_file.parent.parent),
        "load_col": load_columns(yaml_file),
        "checkpoint_dir": str(work / "saved"),
    }
    for key in sorted(fixed.keys() & overrides.keys()):
        log.warning("config %s=%r ignored: the benchmark sets it to %r", key, overrides[key], fixed[key])
    return {**DEFAULTS, **overrides, **fixed}


def job_data(data_path: Path, dataset: str, folder: Path) -> Path:
    """``data_path/dataset/`` as ``folder/dataset/`` (returns ``folder``): every file linked, plus an item file
    naming the warm catalogue (:func:`warm_items`) and the link file cut to the rows RecBole can merge.

    RecBole's items are those of its inter files and of its item file. kgrec trains and ranks over the warm
    catalogue: every item of the KG except the cold-start items held out whole (their interactions are in
    ``DATASET.cold_test.inter``, which RecBole does not read), also the items no user has a positive with in any
    split (movielens-small: about 3,400 of 9,742, which only ever appear as negatives). Without the item file
    RecBole would rank, and draw negatives from, only the items of its three inter files: a smaller catalogue
    than ours, with higher recall for the same model. A source that has its own ``DATASET.item`` keeps it.

    With ``benchmark_filename`` RecBole skips all of its filtering, its ``_filter_link`` included, yet its merge of
    item and entity ids (``KnowledgeBasedDataset._merge_item_and_entity``) takes every link row to be one of its
    items and an entity of the kg file, and fails with a KeyError on any other: the link rows of the cold items and
    of entities in no triple are dropped (:func:`loadable_link_rows`), with a log line. Dropping them changes
    nothing RecBole trains or ranks (an unlinked item gets an entity of its own, in no triple).
    """
    source = data_path / dataset
    target = folder / dataset
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and path.suffix != ".link":
            (target / path.name).symlink_to(path)
    item_file = target / f"{dataset}.item"
    link = source / f"{dataset}.link"
    if not item_file.exists() and link.is_file():
        item = _fields(source, dataset)["item"]
        items = warm_items(source, dataset)
        item_file.write_text(f"{item}:token\n" + "".join(f"{token}\n" for token in items), encoding="utf-8")
        log.info("items: %d (the warm catalogue: the link's items but the cold-start ones)", len(items))
    if link.is_file():
        header, rows, total = loadable_link_rows(target, dataset, link)
        (target / link.name).write_text(header + "".join(rows), encoding="utf-8")
        if len(rows) < total:
            log.info("link: %d of %d rows kept (the others name a cold-start item or an entity of no triple)",
                     len(rows), total)
    return folder


def warm_items(folder: Path, dataset: str) -> list[str]:
    """The link file's items, in its order, but the cold-start ones: those of ``DATASET.cold_test.inter`` with no
    interaction in a benchmark inter file (kgrec's ``RecData.cold_items``)."""
    item = _fields(folder, dataset)["item"]
    warm = _inter_items(folder, dataset)
    cold_file = folder / f"{dataset}.cold_test.inter"
    cold = _column_values(cold_file, item) - warm if cold_file.is_file() else set()
    link = folder / f"{dataset}.link"
    return [token for token in dict.fromkeys(_column(link, item)) if token not in cold]


def loadable_link_rows(folder: Path, dataset: str, link: Path | None = None) -> tuple[str, list[str], int]:
    """The header line of the link file (``link``, default ``folder/DATASET.link``), its rows (lines) whose item is
    one of RecBole's (in a benchmark inter file or in ``DATASET.item``) and whose entity is in the kg file, and its
    number of rows."""
    fields = _fields(folder, dataset)
    items = _inter_items(folder, dataset)
    item_file = folder / f"{dataset}.item"
    if item_file.is_file():
        items |= _column_values(item_file, fields["item"])
    kg = folder / f"{dataset}.kg"
    entities = _column_values(kg, fields["head"]) | _column_values(kg, fields["tail"])
    link = link or folder / f"{dataset}.link"
    with link.open(encoding="utf-8") as lines:
        header = next(lines)
        item_col = _column_index(header, fields["item"], link)
        entity_col = _column_index(header, fields["entity"], link)
        rows, total = [], 0
        for line in filter(str.strip, lines):
            total += 1
            values = line.rstrip("\r\n").split("\t")
            if values[item_col] in items and values[entity_col] in entities:
                rows.append(line if line.endswith("\n") else line + "\n")
    return header, rows, total


def _fields(folder: Path, dataset: str) -> dict[str, str]:
    """The item, entity, head and tail field names of the dataset yaml (RecBole's defaults when absent)."""
    import yaml

    fields = yaml.safe_load((folder / f"{dataset}.yaml").read_text(encoding="utf-8")) or {}
    names = {"item": ("ITEM_ID_FIELD", "item_id"), "entity": ("ENTITY_ID_FIELD", "entity_id"),
             "head": ("HEAD_ENTITY_ID_FIELD", "head_id"), "tail": ("TAIL_ENTITY_ID_FIELD", "tail_id")}
    return {role: fields.get(key, default) for role, (key, default) in names.items()}


def _inter_items(folder: Path, dataset: str) -> set[str]:
    """The items of the benchmark inter files (train, valid, test)."""
    item = _fields(folder, dataset)["item"]
    items: set[str] = set()
    for part in ENFORCED["benchmark_filename"]:
        items |= _column_values(folder / f"{dataset}.{part}.inter", item)
    return items


def _column_values(path: Path, field: str) -> set[str]:
    """The values of the column ``field`` (header ``field:type``) of the tab-separated atomic file ``path``."""
    return set(_column(path, field))


def _column(path: Path, field: str) -> list[str]:
    """The column ``field`` of the tab-separated atomic file ``path``, in file order."""
    with path.open(encoding="utf-8") as lines:
        col = _column_index(next(lines), field, path)
        return [line.rstrip("\r\n").split("\t")[col] for line in filter(str.strip, lines)]


def _column_index(header: str, field: str, path: Path) -> int:
    """The index of ``field`` in an atomic file's header line (``name:type`` columns); ValueError when absent."""
    names = [column.split(":")[0] for column in header.rstrip("\r\n").split("\t")]
    if field not in names:
        raise ValueError(f"{path}: no column {field!r} in header {names}")
    return names.index(field)


def load_columns(yaml_file: Path) -> dict[str, list[str]]:
    """The dataset yaml's ``load_col`` without the inter file's time field, and with the item file's id when
    :func:`job_data` wrote one (its only column).

    The order is random (``RO``), so no model here reads the time, and kgrec writes it empty when unknown (all of
    kgcn-music's): RecBole would carry a column of NaN (its mean-filling of an all-NaN float column gives NaN).
    """
    import yaml

    snippet = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
    load_col = {source: list(fields) for source, fields in snippet["load_col"].items()}
    time_field = snippet.get("TIME_FIELD", "timestamp")
    if time_field in load_col.get("inter", []):
        load_col["inter"].remove(time_field)
        log.info("not loading the inter field %s (order RO: unused)", time_field)
    if "item" not in load_col and yaml_file.with_suffix(".item").is_file():
        load_col["item"] = [snippet.get("ITEM_ID_FIELD", "item_id")]
    return load_col


def run(
    model_name: str, dataset_name: str, protocol: str, yaml_file: Path, config_dict: dict[str, Any]
) -> dict[str, Any]:
    """Train ``model_name`` to early stopping, evaluate it on the test set; the result record."""
    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    config = Config(model=model_name, dataset=dataset_name, config_file_list=[str(yaml_file)],
                    config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    log.info("dataset:\n%s", dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    log.info("split: %d train, %d valid, %d test interactions",
             len(train_data._dataset), len(valid_data._dataset), len(test_data._dataset))

    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epoch_seconds = _time_calls(trainer, "_train_epoch")
    saved_epochs = _record_epochs(trainer)
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False)

    started = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    eval_s = time.perf_counter() - started
    places = config["metric_decimal_place"]  # RecBole rounds its (float32) metric values to this
    metrics = {key.lower(): round(float(value), places) for key, value in test_result.items()}
    if protocol == "ctr":
        with torch.no_grad():
            metrics.update(global_ctr_metrics(model, dataset, test_data._dataset, config["seed"], config["device"]))
    return {
        "implementation": "recbole",
        "model": model_name,
        "trainer": type(trainer).__name__,
        "protocol": protocol,
        "metrics": metrics,
        "train_s_per_epoch": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
        "train_s_epochs": epoch_seconds,
        "eval_s": eval_s,
        "epochs": len(epoch_seconds),
        "best_epoch": saved_epochs[-1] + 1 if saved_epochs else None,
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "valid": round(float(best_valid), places),
        "recbole_version": recbole.__version__,
        "config": effective_hyperparameters(config, model_name, recbole.__file__),
    }


def _time_calls(trainer: Any, method: str) -> list[float]:
    """Wrap ``trainer.method`` to append each call's wall seconds to the returned list."""
    seconds: list[float] = []
    wrapped: Callable[..., Any] = getattr(trainer, method)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return wrapped(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    setattr(trainer, method, timed)
    return seconds


def _record_epochs(trainer: Any) -> list[int]:
    """Wrap ``trainer._save_checkpoint`` (called when the valid score improves) to record its epoch index."""
    epochs: list[int] = []
    save = trainer._save_checkpoint

    def recording(epoch: int, *args: Any, **kwargs: Any) -> Any:
        epochs.append(epoch)
        return save(epoch, *args, **kwargs)

    trainer._save_checkpoint = recording
    return epochs


def global_ctr_metrics(model: Any, dataset: Any, test: Any, seed: int, device: Any) -> dict[str, float]:
    """``auc`` and ``f1`` of ``model.predict`` on the test positives and one sampled negative per positive."""
    import numpy as np
    import torch
    from recbole.data.interaction import Interaction

    uid, iid = dataset.uid_field, dataset.iid_field
    users = test.inter_feat[uid].numpy()
    positives = test.inter_feat[iid].numpy()
    negatives = sample_negatives(users, _histories(dataset), dataset.item_num, np.random.default_rng(seed))
    model.eval()
    scores = []
    for items in (positives, negatives):
        for start in range(0, len(users), PREDICT_BATCH):
            batch = Interaction({uid: torch.from_numpy(users[start:start + PREDICT_BATCH]),
                                 iid: torch.from_numpy(items[start:start + PREDICT_BATCH])})
            scores.append(model.predict(batch.to(device)).float().cpu().numpy())
    score = np.concatenate(scores)
    label = np.concatenate([np.ones(len(users), dtype=bool), np.zeros(len(users), dtype=bool)])
    log.info("global ctr metrics over %d positives and %d sampled negatives", len(users), len(users))
    return {"auc": auc(score, label), "f1": f1(1 / (1 + np.exp(-score.astype(np.float64))) > 0.5, label)}


def _histories(dataset: Any) -> dict[int, set[int]]:
    """Every user's items over all splits (``dataset`` is the loaded whole, before the split)."""
    histories: dict[int, set[int]] = {}
    users = dataset.inter_feat[dataset.uid_field].tolist()
    items = dataset.inter_feat[dataset.iid_field].tolist()
    for user, item in zip(users, items, strict=True):
        histories.setdefault(user, set()).add(item)
    return histories


def sample_negatives(users: Any, histories: dict[int, set[int]], item_num: int, rng: Any) -> Any:
    """One item per entry of ``users``, uniform over ids ``1..item_num-1`` (0 is padding) not in its history."""
    import numpy as np

    out = np.empty(len(users), dtype=np.int64)
    for row, user in enumerate(users.tolist()):
        seen = histories.get(user, set())
        if len(seen) >= item_num - 1:
            raise ValueError(f"user {user} has interacted with every item: no negative to sample")
        item = int(rng.integers(1, item_num))
        while item in seen:
            item = int(rng.integers(1, item_num))
        out[row] = item
    return out


def auc(score: Any, label: Any) -> float:
    """Area under the ROC curve by Mann-Whitney U, tied scores at their average rank."""
    import numpy as np

    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    _, first, counts = np.unique(sorted_score, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)  # 1-based average rank of each tie group
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs positives and negatives")
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def f1(predicted: Any, label: Any) -> float:
    """F1 of boolean predictions against boolean labels (0 when nothing is predicted nor labelled positive)."""
    tp = int((predicted & label).sum())
    wrong = int((predicted ^ label).sum())
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def effective_hyperparameters(config: Any, model_name: str, recbole_file: str) -> dict[str, Any]:
    """The final values of :data:`TRAINING_KEYS` and of the keys in RecBole's ``properties/model/<model>.yaml``."""
    import yaml

    model_yaml = Path(recbole_file).parent / "properties" / "model" / f"{model_name}.yaml"
    model_keys = {}
    if model_yaml.is_file():
        model_keys = yaml.safe_load(model_yaml.read_text(encoding="utf-8")) or {}
    return {key: config[key] for key in (*TRAINING_KEYS, *model_keys)}


if __name__ == "__main__":
    sys.exit(main())
