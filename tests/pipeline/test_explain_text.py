"""Explanation text and JSON from paths, table-driven on a four-entity graph: The Prestige and Inception (items),
Christopher Nolan and an Oscar (attributes)."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from pipeline.explain_text import OTHER_USER, Labels, render
from pipeline.scoring import PathRows

PRESTIGE, INCEPTION, NOLAN, OSCAR = 0, 1, 2, 3
DIRECTOR, SCREENWRITER, AWARD, FOLLOWED_BY, INTERACT = 0, 1, 2, 3, 4
USER_NODE = 4 + 7  # a user node of the collaborative KG: num_entities + user 7

LABELS = Labels(
    entities=pl.DataFrame({"entity_index": [0, 1, 2, 3],
                           "iri": [f"http://www.wikidata.org/entity/Q{n}" for n in (1, 2, 3, 4)],
                           "label": ["The Prestige", "Inception", "Christopher Nolan", "Academy Award"]},
                          schema_overrides={"entity_index": pl.UInt32}),
    relations=pl.DataFrame({"relation_index": [0, 1, 2, 3],
                            "iri": [f"http://www.wikidata.org/prop/direct/P{n}" for n in (57, 58, 166, 156)],
                            "label": ["director", "screenwriter", "award_received", "followed_by"]},
                           schema_overrides={"relation_index": pl.UInt32}),
    items=pl.DataFrame({"item_index": [0, 1], "item_id": ["m1", "m2"], "title": ["The Prestige", "Inception"],
                        "entity_iri": ["http://www.wikidata.org/entity/Q1", "http://www.wikidata.org/entity/Q2"]},
                       schema_overrides={"item_index": pl.UInt32}),
    users=pl.DataFrame({"user_index": [0], "user_id": ["u1"]}, schema_overrides={"user_index": pl.UInt32}),
)

CASES = [  # (nodes from the history item's entity, relations per hop, inverse per hop, expected text)
    ([PRESTIGE, NOLAN, INCEPTION], [DIRECTOR, DIRECTOR], [False, True],
     "Recommended because you watched *The Prestige*, which was also directed by *Christopher Nolan*"),
    ([PRESTIGE, OSCAR, INCEPTION], [AWARD, AWARD], [False, True],
     "Recommended because you watched *The Prestige*, which shares the award received *Academy Award*"),
    ([PRESTIGE, NOLAN, INCEPTION], [DIRECTOR, SCREENWRITER], [False, True],
     "Recommended because you watched *The Prestige*, whose director *Christopher Nolan* is also the screenwriter "
     "of *Inception*"),
    ([PRESTIGE, USER_NODE, INCEPTION], [INTERACT, INTERACT], [True, False],
     "Recommended because people who watched *The Prestige* also watched *Inception*"),
    ([PRESTIGE, INCEPTION], [FOLLOWED_BY], [False],
     "Recommended because you watched *The Prestige*, whose followed by is *Inception*"),
    ([PRESTIGE, INCEPTION], [FOLLOWED_BY], [True],
     "Recommended because you watched *The Prestige*, the followed by of *Inception*"),
    ([PRESTIGE, NOLAN, OSCAR, INCEPTION], [DIRECTOR, AWARD, AWARD], [False, False, True],
     "Recommended because you watched *The Prestige*, linked to *Inception* through *Christopher Nolan* (director) "
     "and *Academy Award* (award received)"),
    ([PRESTIGE, USER_NODE, NOLAN, INCEPTION], [INTERACT, DIRECTOR, DIRECTOR], [True, False, True],
     f"Recommended because you watched *The Prestige*, linked to *Inception* through {OTHER_USER} (interaction) and "
     "*Christopher Nolan* (director)"),
]


def rows(nodes: list[int], relations: list[int], inverse: list[bool]) -> PathRows:
    n = len(relations)
    entities = torch.tensor([nodes + [-1] * (4 - len(nodes))])
    return PathRows(users=torch.tensor([0]), items=torch.tensor([1]), path_rank=torch.tensor([1]),
                    scores=torch.tensor([0.5]), length=torch.tensor([n]), history_item=torch.tensor([0]),
                    entities=entities, relations=torch.tensor([relations + [-1] * (3 - n)]),
                    inverse=torch.tensor([inverse + [False] * (3 - n)]))


@pytest.mark.parametrize(("nodes", "relations", "inverse", "expected"), CASES)
def test_each_path_shape_reads_as_its_template(nodes, relations, inverse, expected) -> None:  # noqa: ANN001
    out = render(rows(nodes, relations, inverse), LABELS, verb="watched")
    assert out.columns == ["user_id", "item_id", "path_rank", "path_json", "explanation"]
    assert out.row(0)[:3] == ("u1", "m2", 1)
    assert out["explanation"].item() == expected


def test_the_json_keeps_the_hops_and_the_kg_triples_and_never_names_another_user() -> None:
    shared = json.loads(render(rows(*CASES[0][:3]), LABELS)["path_json"].item())
    assert shared["from_item"] == {"item_id": "m1", "title": "The Prestige"}
    assert [h["direction"] for h in shared["hops"]] == ["forward", "inverse"]
    assert shared["hops"][0]["to"] == {"iri": "http://www.wikidata.org/entity/Q3", "label": "Christopher Nolan"}
    assert shared["triples"] == [
        {"head": "http://www.wikidata.org/entity/Q1", "relation": "http://www.wikidata.org/prop/direct/P57",
         "tail": "http://www.wikidata.org/entity/Q3"},
        {"head": "http://www.wikidata.org/entity/Q2", "relation": "http://www.wikidata.org/prop/direct/P57",
         "tail": "http://www.wikidata.org/entity/Q3"}]
    assert shared["score"] == pytest.approx(0.5)

    collaborative = render(rows(*CASES[3][:3]), LABELS)["path_json"].item()
    parsed = json.loads(collaborative)
    assert parsed["triples"] == [] and [h["relation"] for h in parsed["hops"]] == ["interaction", "interaction"]
    assert parsed["hops"][0]["to"] == {"iri": None, "label": OTHER_USER}
    assert "u1" not in collaborative and "7" not in collaborative.replace("0.5", "")


def test_a_missing_label_falls_back_to_the_iri(tmp_path) -> None:  # noqa: ANN001
    from kg_build.tables import KG

    kg = KG(entities=pl.DataFrame({"entity_id": [10, 11], "iri": ["http://x.org/Item_One", "http://x.org/Some_Thing"],
                                   "label": ["Item One", None], "kind": ["item", "attribute"],
                                   "retired": [False, False]}),
            relations=pl.DataFrame({"relation_id": [0], "iri": ["http://x.org/has_thing"], "label": [None],
                                    "inverse_of": [None], "retired": [False]}),
            triples=pl.DataFrame({"head_id": [10], "relation_id": [0], "tail_id": [11]}),
            item_entity=pl.DataFrame({"item_index": [0], "item_id": ["a"], "entity_id": [10]}),
            users=pl.DataFrame({"user_index": [0], "user_id": ["u"]}),
            interactions=pl.DataFrame(schema={"user_index": pl.Int32, "item_index": pl.Int32, "weight": pl.Float32,
                                              "ts": pl.Datetime("us", "UTC")}),
            splits=pl.DataFrame(schema={"user_index": pl.Int32, "item_index": pl.Int32, "split": pl.String}))
    labels = Labels.from_kg(kg, torch.tensor([10, 11]), torch.tensor([0]))
    assert labels.entities["label"].to_list() == ["Item One", "Some Thing"]
    assert labels.relations["label"].to_list() == ["has thing"]
    assert labels.items.row(0) == (0, "a", "Item One", "http://x.org/Item_One")
