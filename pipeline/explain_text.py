"""Explanation paths as text and JSON, from entity and relation labels, vectorised in polars.

"Recommended because you watched *The Prestige*, which was also directed by *Christopher Nolan*": a path from a
history item over a shared attribute uses the relation's phrase (``SHARED``; matched on the relation label, so
Wikidata's and DBpedia's "director" read alike), and every other shape has a template of its own (a direct link,
"people who watched X also watched Y" for a collaborative path, two different relations over one entity) with a
generic chain as the fallback. Labels are wrapped in ``*``; other users on a collaborative path are never named.
The JSON keeps the structure: the history item, each hop (relation IRI and label, direction, the entity reached),
the KG triples walked (head, relation, tail IRIs) and the model's path score.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import torch

from pipeline.scoring import PathRows

# "you watched *X*, <phrase> *A*" for X and the recommended item sharing attribute A over the relation labelled so
SHARED = {
    "director": "which was also directed by",
    "starring": "which also stars",
    "cast member": "which also stars",
    "genre": "which is also in the genre",
    "production company": "which was also made by",
    "distributor": "which was also distributed by",
    "record label": "which is also on the label",
    "screenwriter": "which was also written by",
    "writer": "which was also written by",
    "composer": "which also has music by",
    "music composer": "which also has music by",
    "producer": "which was also produced by",
    "director of photography": "which was also shot by",
    "cinematography": "which was also shot by",
    "editing": "which was also edited by",
    "publication date": "which also came out in",
    "country of origin": "which also comes from",
    "hometown": "which also comes from",
    "location of formation": "which was also formed in",
    "band member": "which shares the band member",
    "former band member": "which shares the former band member",
    "has part": "which shares the member",
    "member of": "which was also part of",
    "associated band": "which is also associated with",
    "associated musical artist": "which is also associated with",
    "instrument": "which also features the",
}
VERBS = {"films": "watched", "music-artists": "listened to"}  # per extract.domain; "liked" otherwise
OTHER_USER = "another user"


@dataclass(frozen=True)
class Labels:
    """What the model indices name: entities (entity_index, iri, label), relations (relation_index, iri, label),
    items (item_index, item_id, title, entity_iri) and users (user_index, user_id)."""

    entities: pl.DataFrame
    relations: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame

    @classmethod
    def from_kg(cls, kg, entity_ids: torch.Tensor, relation_ids: torch.Tensor) -> Labels:  # kg: kg_build KG
        """From a KG version's tables and the model data's index-to-id maps (:class:`models.data.RecData`)."""
        local = pl.col("iri").str.extract(r"([^/#]+)$").str.replace_all("_", " ")
        entities = (pl.DataFrame({"entity_id": entity_ids.numpy()}).cast(pl.Int32).with_row_index("entity_index")
                    .join(kg.entities.select("entity_id", "iri", "label"), on="entity_id", how="left")
                    .with_columns(pl.coalesce("label", local).alias("label")).drop("entity_id"))
        relations = (pl.DataFrame({"relation_id": relation_ids.numpy()}).cast(pl.Int32)
                     .with_row_index("relation_index")
                     .join(kg.relations.select("relation_id", "iri", "label"), on="relation_id", how="left")
                     .with_columns(pl.coalesce("label", local).alias("label")).drop("relation_id"))
        items = (kg.item_entity.join(kg.entities.select("entity_id", "iri", "label"), on="entity_id", how="left")
                 .select(pl.col("item_index").cast(pl.UInt32), "item_id",
                         pl.coalesce("label", "item_id").alias("title"), pl.col("iri").alias("entity_iri"))
                 .sort("item_index"))
        users = kg.users.select(pl.col("user_index").cast(pl.UInt32), "user_id")
        return cls(entities, relations, items, users)


def render(rows: PathRows, labels: Labels, *, verb: str = "liked") -> pl.DataFrame:
    """One row per path: user_id, item_id, path_rank, path_json, explanation."""
    n_entities = labels.entities.height
    interact = labels.relations.height  # the collaborative KG's interaction relation comes after the KG's own
    frame = pl.DataFrame({
        "user_index": rows.users.numpy(), "item_index": rows.items.numpy(), "path_rank": rows.path_rank.numpy(),
        "score": rows.scores.numpy(), "length": rows.length.numpy(), "history_item": rows.history_item.numpy(),
        **{f"x{j}": rows.entities[:, j].numpy() for j in range(4)},
        **{f"r{j}": rows.relations[:, j].numpy() for j in range(3)},
        **{f"inv{j}": rows.inverse[:, j].numpy() for j in range(3)},
    }).with_columns(pl.col("user_index", "item_index", "history_item").cast(pl.UInt32))
    frame = (frame.join(labels.users, on="user_index", how="left")
             .join(labels.items.select("item_index", "item_id", pl.col("title").alias("c_title")),
                   on="item_index", how="left")
             .join(labels.items.select(pl.col("item_index").alias("history_item"), pl.col("item_id").alias("h_id"),
                                       pl.col("title").alias("h_title")), on="history_item", how="left"))
    for j in range(4):  # the entity reached after hop j (x0: the history item's entity)
        node = labels.entities.select(pl.col("entity_index").cast(pl.Int64).alias(f"x{j}"),
                                      pl.col("iri").alias(f"iri{j}"), pl.col("label").alias(f"label{j}"))
        frame = frame.join(node, on=f"x{j}", how="left").with_columns(
            (pl.col(f"x{j}") >= n_entities).alias(f"user{j}"))
    for j in range(3):
        rel = labels.relations.select(pl.col("relation_index").cast(pl.Int64).alias(f"r{j}"),
                                      pl.col("iri").alias(f"riri{j}"),
                                      pl.col("label").str.replace_all("_", " ").alias(f"rlabel{j}"))
        frame = frame.join(rel, on=f"r{j}", how="left").with_columns((pl.col(f"r{j}") == interact).alias(f"ui{j}"))
    frame = frame.with_columns(_text(verb).alias("explanation"), _json().alias("path_json"))
    return frame.select("user_id", "item_id", pl.col("path_rank").cast(pl.Int16), "path_json", "explanation")


def _em(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("*"), expr, pl.lit("*")])


def _text(verb: str) -> pl.Expr:
    n, c = pl.col("length"), _em(pl.col("c_title"))
    you = pl.concat_str([pl.lit(f"Recommended because you {verb} "), _em(pl.col("h_title"))])
    fwd0, inv1 = ~pl.col("inv0"), pl.col("inv1")
    kg_hops = ~pl.col("ui0") & ~pl.col("ui1")
    shared = (n == 2) & fwd0 & inv1 & kg_hops & (pl.col("rlabel0") == pl.col("rlabel1"))
    phrase = pl.col("rlabel0").replace_strict(SHARED, default=None, return_dtype=pl.String)
    via = [pl.when(pl.col(f"user{j}")).then(pl.lit(OTHER_USER)).otherwise(_em(pl.col(f"label{j}")))
           for j in range(1, 3)]
    chain = pl.concat_str([you, pl.lit(", linked to "), c, pl.lit(" through "), via[0],
                           pl.lit(" ("), pl.col("rlabel0").fill_null("interaction"), pl.lit(")"),
                           pl.when(n == 3).then(pl.concat_str([pl.lit(" and "), via[1], pl.lit(" ("),
                                                               pl.col("rlabel1").fill_null("interaction"),
                                                               pl.lit(")")])).otherwise(pl.lit(""))])
    return (
        pl.when(shared & phrase.is_not_null())
        .then(pl.concat_str([you, pl.lit(", "), phrase, pl.lit(" "), _em(pl.col("label1"))]))
        .when(shared)
        .then(pl.concat_str([you, pl.lit(", which shares the "), pl.col("rlabel0"), pl.lit(" "),
                             _em(pl.col("label1"))]))
        .when((n == 2) & pl.col("ui0") & pl.col("ui1"))
        .then(pl.concat_str([pl.lit(f"Recommended because people who {verb} "), _em(pl.col("h_title")),
                             pl.lit(f" also {verb} "), c]))
        .when((n == 2) & fwd0 & inv1 & kg_hops)
        .then(pl.concat_str([you, pl.lit(", whose "), pl.col("rlabel0"), pl.lit(" "), _em(pl.col("label1")),
                             pl.lit(" is also the "), pl.col("rlabel1"), pl.lit(" of "), c]))
        .when((n == 1) & fwd0 & ~pl.col("ui0"))
        .then(pl.concat_str([you, pl.lit(", whose "), pl.col("rlabel0"), pl.lit(" is "), c]))
        .when((n == 1) & ~fwd0 & ~pl.col("ui0"))
        .then(pl.concat_str([you, pl.lit(", the "), pl.col("rlabel0"), pl.lit(" of "), c]))
        .otherwise(chain)
    )


def _json() -> pl.Expr:
    hops, triples = [], []
    for j in range(3):
        present = pl.col("length") > j
        user_hop = pl.col(f"ui{j}")
        to = pl.struct(
            pl.when(pl.col(f"user{j + 1}")).then(None).otherwise(pl.col(f"iri{j + 1}")).alias("iri"),
            pl.when(pl.col(f"user{j + 1}")).then(pl.lit(OTHER_USER)).otherwise(pl.col(f"label{j + 1}"))
            .alias("label"),
        )
        hops.append(pl.when(present).then(pl.struct(
            pl.when(user_hop).then(pl.lit("interaction")).otherwise(pl.col(f"riri{j}")).alias("relation"),
            pl.when(user_hop).then(pl.lit("interaction")).otherwise(pl.col(f"rlabel{j}")).alias("relation_label"),
            pl.when(pl.col(f"inv{j}")).then(pl.lit("inverse")).otherwise(pl.lit("forward")).alias("direction"),
            to.alias("to"))))
        head = pl.when(pl.col(f"inv{j}")).then(pl.col(f"iri{j + 1}")).otherwise(pl.col(f"iri{j}"))
        tail = pl.when(pl.col(f"inv{j}")).then(pl.col(f"iri{j}")).otherwise(pl.col(f"iri{j + 1}"))
        triples.append(pl.when(present & ~user_hop).then(pl.struct(
            head.alias("head"), pl.col(f"riri{j}").alias("relation"), tail.alias("tail"))))
    return pl.struct(
        pl.struct(pl.col("h_id").alias("item_id"), pl.col("h_title").alias("title")).alias("from_item"),
        pl.concat_list(hops).list.drop_nulls().alias("hops"),
        pl.concat_list(triples).list.drop_nulls().alias("triples"),
        pl.col("score").alias("score"),
    ).struct.json_encode()
