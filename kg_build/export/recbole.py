"""RecBole (1.2.1) atomic files of a :class:`~kg_build.tables.KG`: :func:`write_recbole`.

The files in ``folder/<name>/`` are tab-separated UTF-8 with a ``field:type`` header (types ``token``,
``token_seq``, ``float``, ``float_seq``): ``<name>.inter`` (every interaction),
``<name>.{train,valid,test}.inter`` (the splits table, loaded by RecBole's ``benchmark_filename``),
``<name>.cold_test.inter`` (cold-start items, for our own evaluation; RecBole ignores it), ``<name>.kg``
(the triples as stored, inverse relations included: leave RecBole's ``kg_reverse_r`` off), ``<name>.link``
and ``<name>.yaml`` (the config snippet naming the fields).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kg_build.export.files import ExportError, active_triples, check_tokens, require_matched, staged
from kg_build.splits import SPLITS
from kg_build.tables import KG

RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
INTER_HEADER = {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float"}
KG_HEADER = {"head_id": "token", "relation_id": "token", "tail_id": "token"}
LINK_HEADER = {"item_id": "token", "entity_id": "token"}
RECBOLE_CONFIG = """\
# RecBole 1.2.1 config for the atomic files beside this one. Run with dataset={name} and
# data_path=<the folder holding {name}/>; {name}.cold_test.inter is not read by RecBole.
USER_ID_FIELD: user_id
ITEM_ID_FIELD: item_id
RATING_FIELD: rating
TIME_FIELD: timestamp
HEAD_ENTITY_ID_FIELD: head_id
RELATION_ID_FIELD: relation_id
TAIL_ENTITY_ID_FIELD: tail_id
ENTITY_ID_FIELD: entity_id
load_col:
  inter: [user_id, item_id, rating, timestamp]
  kg: [head_id, relation_id, tail_id]
  link: [item_id, entity_id]
benchmark_filename: [train, valid, test]
"""
TSV_BREAKS = r"[\t\n\r]"


def write_recbole(kg: KG, folder: Path, name: str) -> dict[str, Path]:
    """Write ``folder/name/`` as RecBole atomic files; returns ``{kind: final path}``.

    Tokens: ``users.user_id``, ``item_entity.item_id``, entity and relation ids as decimal strings.
    ``rating`` is the interaction weight, ``timestamp`` unix seconds (empty when unknown).
    """
    if not name or any(c in name for c in "/\\\t\n") or name.startswith("."):
        raise ExportError(f"bad RecBole dataset name {name!r}")
    final = folder / name
    files = {"inter": f"{name}.inter", **{s: f"{name}.{s}.inter" for s in SPLITS},
             "kg": f"{name}.kg", "link": f"{name}.link", "yaml": f"{name}.yaml"}
    with staged(final) as tmp:
        check_tokens(kg.users, "users", "user_id", TSV_BREAKS, "a tab or newline")
        check_tokens(kg.item_entity, "item_entity", "item_id", TSV_BREAKS, "a tab or newline")
        _write_tsv(_recbole_inter(kg, kg.interactions), INTER_HEADER, tmp / files["inter"])
        for split_name in SPLITS:
            rows = kg.splits.filter(pl.col("split") == split_name).join(
                kg.interactions, on=["user_index", "item_index"], how="left"
            )
            _write_tsv(_recbole_inter(kg, rows), INTER_HEADER, tmp / files[split_name])
        _write_tsv(active_triples(kg).sort("head_id", "relation_id", "tail_id"), KG_HEADER, tmp / files["kg"])
        link = kg.item_entity.sort("item_index").select("item_id", "entity_id")
        _write_tsv(link, LINK_HEADER, tmp / files["link"])
        (tmp / files["yaml"]).write_text(RECBOLE_CONFIG.format(name=name), encoding="utf-8", newline="\n")
    return {kind: final / file for kind, file in files.items()}


def _recbole_inter(kg: KG, rows: pl.DataFrame) -> pl.DataFrame:
    """``user_id, item_id, rating, timestamp`` for rows holding ``user_index, item_index, weight, ts``."""
    out = (
        rows.join(kg.users, on="user_index", how="left")
        .join(kg.item_entity.select("item_index", "item_id"), on="item_index", how="left")
        .sort("user_index", "item_index")
    )
    require_matched(out, "user_id", "users", "user_index")
    require_matched(out, "item_id", "item_entity", "item_index")
    return out.select(
        "user_id",
        "item_id",
        pl.col("weight").alias("rating"),
        (pl.col("ts").dt.epoch("us") / 1_000_000).alias("timestamp"),
    )


def _write_tsv(frame: pl.DataFrame, header: dict[str, str], path: Path) -> None:
    """Columns in ``header`` order, named ``field:type``; nulls as empty fields."""
    frame.select(pl.col(f).alias(f"{f}:{t}") for f, t in header.items()).write_csv(
        path, separator="\t", quote_style="never", null_value="", line_terminator="\n"
    )
