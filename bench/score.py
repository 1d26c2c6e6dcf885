"""Benchmark: batch scoring throughput (users/s) and warehouse write throughput (rows/s), DuckDB and PostgreSQL.

    .venv/bin/python bench/score.py [--ml-home DIR] [--users 100000] [--items 10000] [--out FILE]

1. **Synthetic scale-up**: 100,000 users x 10,000 items (a random KG of 30,000 entities, 20 seen items per user),
   models built untrained (throughput does not depend on the weights): ``pipeline.scoring.top_k`` for the top 20,
   seen items masked, in chunks of 1,024 users, timed per model.
2. **Writes**: those 2,000,000 recommendation rows (no explanations) swapped into a DuckDB file and into a
   throwaway PostgreSQL 15 server (tests/pgserver.py: ``initdb`` + ``pg_ctl``, fsync off), each written twice
   (a first load, then a re-run that replaces the partition). Reported: the bulk load into staging (Arrow scan /
   ``COPY``) and the whole swap (load + delete + insert + scoring_runs) in rows/s, and the checks' time.
3. **movielens-small** (with ``--ml-home``, a home where ``kgrec -p movielens`` published the KG and trained
   the models): ``kgrec score`` for 609 users x 9,742 items with 3 explanation paths per item, into DuckDB and
   PostgreSQL.

Targets (issue 8, 2 CPU cores): top-20 for 100,000 users x 10,000 items in under 60 s of scoring; at least
200,000 rows/s into PostgreSQL with COPY. Prints a Markdown table (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.data import Pairs, RecData  # noqa: E402
from models.fit import build_model  # noqa: E402
from models.graph import KnowledgeGraph  # noqa: E402
from pipeline.scoring import top_k  # noqa: E402
from pipeline.warehouse import Run, Warehouse  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

DAY = date(2026, 11, 21)
MODELS = ("bprmf", "cke", "kgat")


def synthetic(users: int, items: int, seen: int = 20, seed: int = 0) -> RecData:
    g = torch.Generator().manual_seed(seed)
    entities = 3 * items
    triples = 5 * items
    kg = KnowledgeGraph(num_entities=entities, num_relations=8,
                        heads=torch.randint(0, items, (triples,), generator=g),
                        relations=torch.randint(0, 8, (triples,), generator=g),
                        tails=torch.randint(items, entities, (triples,), generator=g),
                        item_entity=torch.arange(items))
    u = torch.arange(users).repeat_interleave(seen)
    i = (torch.randint(0, items, (users,), generator=g)[:, None] + torch.arange(seen)).reshape(-1) % items
    empty = Pairs(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    return RecData(users, items, {"train": Pairs(u, i), "valid": empty, "test": empty, "cold_test": empty}, kg,
                   torch.arange(entities), torch.arange(8))


def score_rows(data: RecData, k: int, threads: int) -> tuple[list[list[str]], object]:
    rows, recs = [], None
    for name in MODELS:
        began = time.perf_counter()
        model = build_model(name, data, {}, seed=0)
        built = time.perf_counter() - began
        began = time.perf_counter()
        recs = top_k(model, data, torch.arange(data.num_users), k, chunk=1024, progress=False)
        took = time.perf_counter() - began
        rows.append([f"scoring: {name}, {data.num_users:,} users x {data.num_items:,} items, top {k}",
                     f"{took:.1f} s", f"{data.num_users / took:,.0f} users/s", f"model built in {built:.1f} s; "
                     f"{threads} threads; {'meets' if took < 60 else 'misses'} the 60 s target"])
        print(" | ".join(rows[-1]), flush=True)
    return rows, recs


def as_run(recs, model: str = "bprmf") -> Run:
    users = np.char.add("u", recs.users.numpy().astype(str))
    items = np.char.add("i", recs.items.numpy().astype(str))
    table = pa.table({"user_id": users, "item_id": items, "rank": recs.ranks.numpy().astype(np.int16),
                      "score": recs.scores.double().numpy()})
    n_items = int(recs.items.max()) + 1
    catalog = pa.table({"item_id": [f"i{j}" for j in range(n_items)], "entity_iri": [f"urn:item:{j}" for j in
                                                                                     range(n_items)],
                        "title": [f"Item {j}" for j in range(n_items)]})
    empty = pa.table({"user_id": pa.array([], pa.string()), "item_id": pa.array([], pa.string()),
                      "path_rank": pa.array([], pa.int16()), "path_json": pa.array([], pa.string()),
                      "explanation": pa.array([], pa.string())})
    return Run(str(uuid.uuid4()), DAY, model, 1, 1, table, empty, catalog)


def write_rows(run: Run, url: str, label: str) -> list[list[str]]:
    wh = Warehouse(url)
    wh.ensure_schema()
    rows = []
    for attempt in ("first load", "re-run (replaces)"):
        run = Run(**{**run.__dict__, "run_id": str(uuid.uuid4())})
        began = time.perf_counter()
        written = wh.replace_partition(run)
        total = time.perf_counter() - began
        rows.append([f"write: {label}, {written.rows:,} rows, {attempt}",
                     f"{total:.1f} s", f"{written.rows / max(written.load_s, 1e-9):,.0f} rows/s bulk load; "
                     f"{written.rows / (written.load_s + written.swap_s):,.0f} rows/s swap",
                     f"load {written.load_s:.2f} s, swap {written.swap_s:.2f} s, checks {written.checks_s:.2f} s"])
        print(" | ".join(rows[-1]), flush=True)
    wh.dispose()
    return rows


def movielens(home: Path, pg: PostgresServer, folder: Path) -> list[list[str]]:
    from pipeline.settings import load_settings
    from pipeline.steps.score import score

    rows = []
    for label, url in (("DuckDB", f"duckdb:///{folder / 'ml.duckdb'}"), ("PostgreSQL", pg.new_database())):
        settings = load_settings("movielens", environ={"KGREC_HOME": str(home), "KGREC_WAREHOUSE__URL": url})
        for model in ("kgcn", "bprmf"):
            began = time.perf_counter()
            result = score(settings, DAY, model=model, progress=False)
            total = time.perf_counter() - began
            w = result.written
            rows.append([f"movielens-small: {model}, {result.users} users x 9,742 items, top 20 + 3 paths, {label}",
                         f"{total:.1f} s", f"{result.users / result.score_s:,.0f} users/s scoring",
                         f"explain {result.explain_s:.1f} s ({result.explanations:,} paths); write "
                         f"{(w.rows + w.explanations) / (w.load_s + w.swap_s):,.0f} rows/s "
                         f"({w.rows:,} + {w.explanations:,} rows)"])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--ml-home", type=Path, help="a home with the movielens profile's KG and trained models")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    data = synthetic(args.users, args.items)
    rows, recs = score_rows(data, 20, threads)
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg:
        run = as_run(recs)
        rows += write_rows(run, f"duckdb:///{Path(tmp) / 'bench.duckdb'}", "DuckDB")
        rows += write_rows(run, pg.new_database(), "PostgreSQL 15 (COPY)")
        if args.ml_home:
            rows += movielens(args.ml_home, pg, Path(tmp))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    table = ["| what | time | throughput | notes |", "|---|---|---|---|"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    text = "\n".join(table) + f"\n\nMachine: {machine}.\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
