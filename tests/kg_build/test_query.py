"""Nothing from data can change a query's structure; templates and definitions are validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg_build import query as q
from kg_build.extract import read_entity_file
from kg_build.sources import SourceDefinitionError, load_definitions
from kg_build.sparql import SparqlClient
from tests.conftest import free_port

INJECTIONS = [
    'x" } ; DROP ALL ; #',
    "x' } ; DROP ALL ; #",
    'Dark Knight, The"@en } UNION { ?item ?p ?o } #',
    "multi\nline \\ back\\slash \"quoted\" \t tab",
    "Amélie — WALL·E 「千と千尋」",
]
RDFS = {"rdfs": "http://www.w3.org/2000/01/rdf-schema#"}


@pytest.fixture(scope="module")
def hostile_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """A real server whose labels are the injection strings themselves."""
    from pipeline import mirror

    folder = tmp_path_factory.mktemp("hostile")
    lines = [
        f"<http://example.org/film/{i}> <http://www.w3.org/2000/01/rdf-schema#label> {q.literal(text, 'en')} ."
        for i, text in enumerate(INJECTIONS)
    ]
    (folder / "hostile.nt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = mirror.MirrorSpec("hostile", free_port(), (folder / "hostile.nt",))
    mirror.start(spec, folder)
    yield spec.endpoint
    mirror.stop(folder, "hostile")


@pytest.mark.parametrize("index", range(len(INJECTIONS)))
def test_a_hostile_title_is_one_literal_and_finds_exactly_its_entity(hostile_endpoint: str, index: int):
    title = INJECTIONS[index]
    query = q.render(
        "label_lookup", prefixes=q.prefix_block(RDFS), labels=q.literal_list([title], "en"),
        label_property=q.term("rdfs:label", RDFS), limit=10, offset=0,
    )
    rows = SparqlClient(hostile_endpoint, user_agent="kgrec-tests").select(query).bindings
    assert [(r["item"]["value"], r["label"]["value"]) for r in rows] == [(f"http://example.org/film/{index}", title)]


@pytest.mark.parametrize(
    "bad",
    ["http://example.org/a>b", "http://x/a> } ; DROP ALL ; <http://y", 'http://x/"q"', "http://x/a b",
     "http://x/{a}", "no-scheme", "", "1http://x"],
)
def test_iris_that_could_break_out_are_refused(bad: str):
    with pytest.raises(q.QueryError, match="not a valid IRI"):
        q.iri(bad)


def test_templates_take_only_built_fragments_and_every_parameter():
    params = dict(prefixes=q.prefix_block(RDFS), labels=q.literal_list(["a"]), label_property=q.term("rdfs:label", RDFS))
    with pytest.raises(q.QueryError, match="must be built by kg_build.query"):
        q.render("label_lookup", **params, limit="10; DROP ALL", offset=0)  # type: ignore[arg-type]
    with pytest.raises(q.QueryError, match=r"missing \['offset'\]"):
        q.render("label_lookup", **params, limit=10)
    with pytest.raises(q.QueryError, match="must not be negative"):
        q.render("label_lookup", **params, limit=10, offset=-1)
    with pytest.raises(q.QueryError, match=r"unexpected \['extra'\]"):
        q.render("label_lookup", **params, limit=10, offset=0, extra=1)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("wdt:P31/wdt:P279*", True), ("^dbo:starring|dbo:director", True), ("<http://x/p>+", True),
     ("wdt:P31 } UNION { ?s ?p ?o", False), ("undeclared:P1", False), ("wdt:P31/(wdt:P279)*", False)],
)
def test_property_paths_from_config_are_validated(value: str, ok: bool):
    prefixes = {"wdt": "http://www.wikidata.org/prop/direct/", "dbo": "http://dbpedia.org/ontology/"}
    if ok:
        assert q.path(value, prefixes).replace(" ", "") == value.replace(" ", "")
    else:
        with pytest.raises(q.QueryError):
            q.path(value, prefixes)


def test_entity_files_name_the_bad_lines(tmp_path: Path):
    good = tmp_path / "ok.txt"
    good.write_text("# aligned films\nhttp://www.wikidata.org/entity/Q1\n\n<http://www.wikidata.org/entity/Q2>\n")
    assert read_entity_file(good) == ["http://www.wikidata.org/entity/Q1", "http://www.wikidata.org/entity/Q2"]
    bad = tmp_path / "bad.txt"
    bad.write_text("http://www.wikidata.org/entity/Q1\nhttp://x/a> } DROP ALL {\nnot an iri\n")
    with pytest.raises(ValueError) as err:
        read_entity_file(bad)
    assert f"{bad}:2:" in str(err.value) and f"{bad}:3:" in str(err.value)


def test_the_shipped_definitions_cover_the_issue_domains():
    defs = load_definitions()
    wd, db = defs["wikidata"], defs["dbpedia"]
    assert set(wd.domain("films").relations.values()) == {
        "wdt:P57", "wdt:P161", "wdt:P136", "wdt:P272", "wdt:P495", "wdt:P577", "wdt:P58", "wdt:P86", "wdt:P344"}
    assert wd.domain("films").external_ids == {"imdb_id": "wdt:P345"}
    assert set(db.domain("films").relations) == {
        "director", "starring", "writer", "producer", "music_composer", "cinematography", "editing", "distributor"}
    music = db.domain("music-artists")
    assert {r.object for r in music.candidates} >= {"dbo:Band", "dbo:MusicalArtist"}
    assert {r.path for r in music.candidates if r.object is None} >= {"dbo:genre", "dbo:associatedBand", "dbo:recordLabel"}
    assert wd.expand("wdt:P57") == "http://www.wikidata.org/prop/direct/P57"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[s]\nlabels=["rdfs:label"]\nprefixes={rdfs="http://www.w3.org/2000/01/rdf-schema#"}\n'
         '[s.domains.d]\ncandidates=[{path="rdf:type"}]\nrelations={x="rdfs:label"}\n',
         r"\[s\]\.domains\.d: not a prefixed name with a declared prefix.*'rdf:type'"),
        ('[s]\nlabels=["rdfs:label"]\nprefixes={rdfs="http://www.w3.org/2000/01/rdf-schema#"}\n[s.domains.d]\n'
         'candidates=[{path="rdfs:label"}]\n', r"\[s\]\.domains\.d: missing key 'relations'"),
        ("[s\n", r"bad\.toml"),
    ],
)
def test_a_bad_definitions_file_names_the_key(tmp_path: Path, toml: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(SourceDefinitionError, match=message):
        load_definitions(path)
