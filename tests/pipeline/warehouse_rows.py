"""Synthetic scoring runs for the warehouse tests, and a writer to run (and kill) in another process:
``python -m tests.pipeline.warehouse_writer`` lives below as ``main``."""

from __future__ import annotations

import sys
import uuid
from datetime import date

import numpy as np
import pyarrow as pa

from pipeline.warehouse import Run, Warehouse


def synthetic_run(run_date: date, *, users: int = 100, k: int = 20, items: int = 500, model: str = "bprmf",
                  seed: int = 0, user_ids: list[str] | None = None) -> Run:
    """``users`` lists of ``k`` distinct items with falling scores, one explanation per user's top item."""
    rng = np.random.default_rng(seed)
    ids = np.array(user_ids if user_ids is not None else [f"u{i:06d}" for i in range(users)])
    n = len(ids)
    picks = (rng.integers(0, items, n)[:, None] + np.arange(k)) % items  # k distinct items per user
    user_col = np.repeat(ids, k)
    recs = pa.table({"user_id": user_col, "item_id": np.char.add("i", picks.reshape(-1).astype(str)),
                     "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), n),
                     "score": (np.sort(rng.random((n, k)), axis=1)[:, ::-1]).reshape(-1)})
    top = recs.filter(pa.compute.equal(recs["rank"], 1))
    note = '{"hops": [], "note": "synthetic, \\"quoted\\", with commas"}'
    explanations = pa.table({"user_id": top["user_id"], "item_id": top["item_id"],
                             "path_rank": np.ones(top.num_rows, dtype=np.int16),
                             "path_json": [note] * top.num_rows,
                             "explanation": ["Recommended because you watched *A, \"B\"*"] * top.num_rows})
    catalog = pa.table({"item_id": [f"i{j}" for j in range(items)],
                        "entity_iri": [f"http://example.org/item/{j}" for j in range(items)],
                        "title": [f"Item {j}" for j in range(items)]})
    return Run(str(uuid.uuid4()), run_date, model, 1, 1, recs, explanations, catalog, {"synthetic": True})


def main() -> None:
    """``URL RUN_DATE USERS``: write one synthetic run, printing ``writing`` before and ``committed`` after."""
    url, run_date, users = sys.argv[1], date.fromisoformat(sys.argv[2]), int(sys.argv[3])
    run = synthetic_run(run_date, users=users, seed=7)
    warehouse = Warehouse(url)
    print("writing", flush=True)
    warehouse.replace_partition(run)
    print("committed", flush=True)


if __name__ == "__main__":
    main()
