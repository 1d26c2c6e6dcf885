"""KG assembly on hand-built raw triples: items as entities, reachability, literals, filters, inverses, ids."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from kg_build import vocab as vocab_mod
from kg_build.assemble import ITEM_PREFIX, AssemblyConfig, assemble
from kg_build.collaborative import collaborative
from kg_build.splits import SplitConfig
from kg_build.tables import KG

WD, DBR = "http://www.wikidata.org/entity/", "http://dbpedia.org/resource/"
P = "http://www.wikidata.org/prop/direct/"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
XSD_DT = "http://www.w3.org/2001/XMLSchema#dateTime"
NAMES = {P + "P57": "director", P + "P161": "cast_member", P + "P577": "publication_date",
         P + "P155": "follows", "http://dbpedia.org/ontology/director": "director"}


def items() -> pl.DataFrame:
    return pl.DataFrame({"item_id": ["a", "b", "c"], "title": ["Alien", "Aliens", "Unknown Film"]})


def links(extra: list[tuple] = ()) -> pl.DataFrame:
    rows = [("a", WD + "Q1", "wikidata", "accepted"), ("b", WD + "Q2", "wikidata", "accepted"),
            ("c", None, "wikidata", "unmatched"), ("a", DBR + "Alien", "dbpedia", "accepted"),
            ("b", WD + "Q99", "wikidata", "ambiguous"), *extra]
    return pl.DataFrame(rows, schema=["item_id", "entity_iri", "source", "status"], orient="row")


def fact(s: str, p: str, o: str, kind: str = "iri", lang: str | None = None, datatype: str | None = None) -> tuple:
    return (s, p, o, kind, lang, datatype)


def facts(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["subject", "predicate", "object", "object_kind", "lang", "datatype"],
                        orient="row")


BASE = [
    fact(WD + "Q1", P + "P57", WD + "Q10"),                    # Alien - director - Ridley Scott
    fact(WD + "Q2", P + "P57", WD + "Q11"),                    # Aliens - director - James Cameron
    fact(WD + "Q1", P + "P161", WD + "Q12"),                   # cast: Sigourney Weaver, in both
    fact(WD + "Q2", P + "P161", WD + "Q12"),
    fact(WD + "Q2", P + "P161", WD + "Q12"),                   # a duplicate row
    fact(WD + "Q2", P + "P155", WD + "Q1"),                    # Aliens follows Alien: an item as tail
    fact(WD + "Q1", P + "P577", "1979-05-25T00:00:00Z", "literal", datatype=XSD_DT),
    fact(WD + "Q1", P + "P577", "1980-01-01T00:00:00Z", "literal", datatype=XSD_DT),  # a later release
    fact(WD + "Q1", P + "P2047", "117", "literal", datatype="http://www.w3.org/2001/XMLSchema#decimal"),
    fact(WD + "Q1", P + "P31", WD + "Q1"),                     # a self loop
    fact(DBR + "Alien", "http://dbpedia.org/ontology/director", DBR + "Ridley_Scott"),
    fact(WD + "Q99", P + "P57", WD + "Q50"),                   # facts of a candidate that was not accepted
    fact(WD + "Q10", LABEL, "Ridley Scott", "literal", "en"),
    fact(WD + "Q10", LABEL, "Ridley Scott (de)", "literal", "de"),
    fact(WD + "Q12", LABEL, "Sigourney Weaver", "literal", "de"),
    fact(WD + "Q10", P + "P27", WD + "Q145"),                  # second hop: Ridley Scott - citizenship - UK
]


class Vocabs:
    """In-memory append-only vocabularies, one run date at a time."""

    def __init__(self) -> None:
        self.tables: dict[str, pl.DataFrame] = {}
        self.day = date(2026, 11, 21)

    def __call__(self, name: str, keys: pl.Series) -> pl.DataFrame:
        before = self.tables.get(name, vocab_mod.empty())
        self.tables[name] = vocab_mod.update(before, keys, self.day, name=name)
        vocab_mod.check_append_only(before, self.tables[name], name)
        return self.tables[name]


def build(rows: list[tuple] = BASE, vocabs: Vocabs | None = None, link_rows: pl.DataFrame | None = None,
          item_rows: pl.DataFrame | None = None, **config):
    return assemble(
        items() if item_rows is None else item_rows, links() if link_rows is None else link_rows, facts(rows),
        relation_names=NAMES, label_predicates=[LABEL], source_order=["wikidata", "dbpedia"],
        config=AssemblyConfig(**config), vocab=vocabs or Vocabs(),
    )


def named(kg) -> set[tuple[str, str, str]]:
    """Triples as (head iri-or-key, relation label, tail iri-or-key)."""
    ent = kg.entities.select("entity_id", "iri")
    rel = kg.relations.select("relation_id", "label")
    rows = (kg.triples.join(ent.rename({"entity_id": "head_id", "iri": "h"}), on="head_id")
            .join(rel, on="relation_id").join(ent.rename({"entity_id": "tail_id", "iri": "t"}), on="tail_id"))
    return set(rows.select("h", "label", "t").iter_rows())


def test_items_are_entities_with_the_facts_of_every_source_and_unaligned_items_stay():
    kg = build()
    ents = {r["iri"]: r for r in kg.entities.iter_rows(named=True)}
    assert ents[WD + "Q1"]["kind"] == "item" and ents[WD + "Q1"]["label"] == "Alien"
    assert ents[ITEM_PREFIX + "c"]["kind"] == "item"  # unaligned: its own URN, no facts
    assert kg.item_entity["item_id"].to_list() == ["a", "b", "c"]
    assert kg.item_entity["item_index"].to_list() == [0, 1, 2]
    c_id = ents[ITEM_PREFIX + "c"]["entity_id"]
    assert c_id not in kg.triples["head_id"].to_list() and c_id not in kg.triples["tail_id"].to_list()
    assert named(kg) == {
        (WD + "Q1", "director", WD + "Q10"),
        (WD + "Q1", "director", DBR + "Ridley_Scott"),  # DBpedia's fact on the same item entity
        (WD + "Q2", "director", WD + "Q11"),
        (WD + "Q1", "cast_member", WD + "Q12"),
        (WD + "Q2", "cast_member", WD + "Q12"),
        (WD + "Q2", "follows", WD + "Q1"),  # the tail is the item entity, not a copy
        (WD + "Q1", "publication_date", "urn:kgrec:year:1970-1979"),  # the earliest date, bucketed
    }
    assert WD + "Q50" not in ents  # the ambiguous candidate's facts are not in the KG
    assert kg.stats["self_loops_dropped"] == 1
    assert kg.stats["literals_dropped"] == 2  # the running time, and the later date
    assert kg.stats["alignment"] == {"items": 3, "aligned": 2, "unaligned": 1, "coverage": 0.6667,
                                     "by_source": {"dbpedia": 1, "wikidata": 2}, "links_of_unknown_items": 0}


def test_labels_prefer_the_configured_language_then_any_and_years_get_a_readable_label():
    kg = build()
    labels = dict(kg.entities.select("iri", "label").iter_rows())
    assert labels[WD + "Q10"] == "Ridley Scott"
    assert labels[WD + "Q12"] == "Sigourney Weaver"  # only a German label: better than none
    assert labels["urn:kgrec:year:1970-1979"] == "1970–1979"
    assert build(year_bucket=1).entities.filter(pl.col("iri") == "urn:kgrec:year:1979-1979")["label"][0] == "1979"
    assert not any(k.startswith("urn:kgrec:year") for k in build(year_bucket=0).entities["iri"])


def test_a_second_hop_is_kept_only_when_configured():
    one, two = build(hops=1), build(hops=2)
    assert (WD + "Q10", "P27", WD + "Q145") in named(two)
    assert WD + "Q145" not in one.entities["iri"].to_list()


def test_degree_filters_drop_rare_tails_and_cap_hubs_deterministically():
    rare = build(min_tail_degree=2)
    assert named(rare) == {(WD + "Q1", "cast_member", WD + "Q12"), (WD + "Q2", "cast_member", WD + "Q12"),
                           (WD + "Q2", "follows", WD + "Q1")}  # items as tails are never filtered
    assert rare.stats["rare_tail_triples_dropped"] == 4
    hub_rows = BASE + [fact(WD + f"Q{i}", P + "P161", WD + "Q12") for i in (1, 2)]
    more_items = pl.DataFrame({"item_id": ["a", "b", "c", "d"], "title": ["Alien", "Aliens", "Unknown", "Alien 3"]})
    capped = build(hub_rows + [fact(WD + "Q3", P + "P161", WD + "Q12")], item_rows=more_items,
                   link_rows=links([("d", WD + "Q3", "wikidata", "accepted")]), max_tail_degree=2)
    weaver = {h for h, r, t in named(capped) if t == WD + "Q12"}
    assert weaver == {WD + "Q1", WD + "Q2"}  # the smallest head keys: the same choice every night
    assert capped.stats["hubs_capped"] == 1 and capped.stats["hub_triples_dropped"] == 1


def test_inverse_relations_are_their_own_ids_pointing_at_the_forward_one():
    kg = build(inverse_relations=True)
    plain = build()
    assert kg.triples.height == 2 * plain.triples.height
    rel = {r["iri"]: r for r in kg.relations.iter_rows(named=True)}
    inverse = rel["^" + P + "P57"]
    assert inverse["label"] == "director_inverse" and inverse["inverse_of"] == rel[P + "P57"]["relation_id"]
    assert rel[P + "P57"]["inverse_of"] is None
    assert (WD + "Q10", "director_inverse", WD + "Q1") in named(kg)


def test_ids_are_stable_across_runs_and_vanished_entities_are_retired_not_renumbered():
    vocabs = Vocabs()
    first = build(vocabs=vocabs)
    vocabs.day = date(2026, 11, 22)
    rows = [r for r in BASE if r[2] != WD + "Q11"] + [fact(WD + "Q2", P + "P57", WD + "Q13")]
    second = build(rows, vocabs=vocabs)
    before = dict(first.entities.select("iri", "entity_id").iter_rows())
    after = {r["iri"]: r for r in second.entities.iter_rows(named=True)}
    assert all(after[iri]["entity_id"] == eid for iri, eid in before.items())
    assert after[WD + "Q11"]["retired"] and not after[WD + "Q13"]["retired"]
    assert after[WD + "Q13"]["entity_id"] == max(before.values()) + 1
    assert second.item_entity.equals(first.item_entity)
    again = build(rows, vocabs=vocabs)
    assert again.triples.equals(second.triples) and again.entities.equals(second.entities)


def test_the_collaborative_part_is_indexed_split_and_kept_apart():
    kg = build()
    inter = pl.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"], "item_id": ["a", "b", "c", "a", "a", "zzz"],
        "weight": [5.0, 2.0, 4.0, 4.0, 5.0, 5.0], "ts": [None] * 6,
    }, schema_overrides={"ts": pl.Datetime("us", "UTC"), "weight": pl.Float32})
    collab = collaborative(inter, kg.item_entity, threshold=4.0, split_config=SplitConfig(valid=0, test=0),
                           vocab=Vocabs())
    assert collab.users["user_id"].to_list() == ["u1", "u2"]  # u3 only rated an unknown item
    pairs = set(collab.interactions.select("user_index", "item_index").iter_rows())
    assert pairs == {(0, 0), (0, 2), (1, 0)}  # u1: a, c (b is below 4); u2: a once
    assert collab.stats["unknown_items_dropped"] == 1
    full = KG(entities=kg.entities, relations=kg.relations, triples=kg.triples, item_entity=kg.item_entity,
              users=collab.users, interactions=collab.interactions, splits=collab.splits)
    assert full.counts()["interactions"] == 3 and full.counts()["split_train"] == 3


@pytest.mark.parametrize("config", [dict(year_bucket=-1), dict(min_tail_degree=0), dict(hops=0),
                                    dict(max_tail_degree=0)])
def test_bad_assembly_config_is_refused(config):
    with pytest.raises(ValueError, match="must be at least 1|bad assembly config"):
        AssemblyConfig(**config)
