"""build -> validate -> publish on the sample, through the real steps and the `kgrec` command.

The upstream partitions (ingest, extract against real oxigraph mirrors, align) are made once per
module and copied into each test's home, so every test starts from the same lake.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kg_build.vocab import VocabularyStore
from pipeline import kg_store
from pipeline.lake import Lake, LakeError
from pipeline.settings import load_settings
from pipeline.steps.align import align
from pipeline.steps.build import build
from pipeline.steps.extract import extract
from pipeline.steps.ingest import ingest
from pipeline.steps.publish import PublishRefused, publish
from pipeline.steps.validate import ValidationFailed, validate
from tests.conftest import kgrec

DAY = date(2026, 11, 21)
NEXT = date(2026, 11, 22)  # the next night
D = {"run_date": "2026-11-21"}
P577 = "http://www.wikidata.org/prop/direct/P577"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, sample_mirrors) -> Path:
    """A home whose lake holds the sample's catalog, interactions, raw triples and alignment for DAY."""
    home = tmp_path_factory.mktemp("kg-upstream")
    settings = load_settings(environ={"KGREC_HOME": str(home), **sample_mirrors})
    ingest(settings, DAY)
    extract(settings, DAY)
    align(settings, DAY)
    return home


@pytest.fixture
def home(tmp_path: Path, upstream: Path) -> Path:
    shutil.copytree(upstream, tmp_path / "home", ignore=shutil.ignore_patterns("cache"))
    return tmp_path / "home"


def settings_for(home: Path, **env: str):
    return load_settings(environ={"KGREC_HOME": str(home), **env})


def hashes(lake: Lake, version: int) -> dict[str, str]:
    return {name: entry.sha256 for name, entry in kg_store.manifest(lake, version).files.items()}


def expected_triples_by_relation(lake: Lake, sources: list[str]) -> dict[str, int]:
    """What the KG must hold, computed straight from the raw triples: the accepted items' IRI facts
    (each once) and one year bucket per dated item."""
    links = lake.read("alignment", D, "links").filter(pl.col("status") == "accepted")
    expected: dict[str, int] = {}
    for source in sources:
        facts = lake.read("raw_triples", {"source": source, **D}, "facts")
        mine = facts.join(links.filter(pl.col("source") == source).select(pl.col("entity_iri").alias("subject")),
                          on="subject", how="semi")
        iri_facts = mine.filter((pl.col("object_kind") == "iri") & ~pl.col("predicate").str.ends_with("#label"))
        expected |= dict(iri_facts.unique(["subject", "predicate", "object"]).group_by("predicate").len().iter_rows())
        dated = mine.filter(pl.col("predicate") == P577)["subject"].n_unique()
        if dated:
            expected[P577] = dated
    return expected


def test_the_manifest_counts_match_the_inputs(home: Path):
    settings = settings_for(home)
    result = build(settings, DAY)
    lake = Lake(settings.lake_root)
    manifest = kg_store.manifest(lake, result.version)
    links = lake.read("alignment", D, "links").filter(pl.col("status") == "accepted")
    expected = expected_triples_by_relation(lake, ["wikidata", "dbpedia"])
    by_relation = {iri: v["triples"] for iri, v in manifest.extra["triples_by_relation"].items()}
    assert by_relation == expected
    counts = manifest.extra["counts"]
    assert counts["triples"] == sum(expected.values()) == manifest.files["triples"].rows
    assert counts["items"] == 201 == lake.read("catalog", D, "items").height  # unaligned items included
    assert manifest.extra["alignment"]["aligned"] == links["item_id"].n_unique()
    positives = lake.read("interactions", D, "interactions").filter(pl.col("weight") >= 4.0)
    assert counts["interactions"] == positives.unique(["user_id", "item_id"]).height
    assert sum(v for k, v in counts.items() if k.startswith("split_")) == counts["interactions"]
    assert {i["dataset"] for i in manifest.inputs} == {"catalog", "interactions", "alignment", "raw_triples"}
    assert set(manifest.extra["sources"]) == {"wikidata", "dbpedia"}
    entities = lake.read("kg", kg_store.key(result.version), "entities")
    assert entities.filter(pl.col("kind") == "item").height == 201


def test_build_validate_publish_twice_with_the_cli_changes_no_id_and_no_file_hash(home: Path):
    env = {"KGREC_HOME": str(home)}
    for step in ("build", "validate", "publish"):
        run = kgrec(step, "--date", str(DAY), env=env)
        assert run.returncode == 0, run.stderr
    lake = Lake(home / "lake")
    assert kg_store.published(lake) == 1
    assert "passed" in kgrec("validate", "--date", str(DAY), env=env).stdout  # re-validating is fine
    vocab_files = {p.name: p.read_bytes() for p in (home / "lake" / "vocab").glob("*.parquet")}
    assert set(vocab_files) == {"entities.parquet", "relations.parquet", "items.parquet", "users.parquet"}

    copy_night(lake, DAY, NEXT)
    for step in ("build", "validate", "publish"):  # the next night, nothing changed upstream
        run = kgrec(step, "--date", str(NEXT), env=env)
        assert run.returncode == 0, run.stderr
    assert kg_store.versions(lake) == [1, 2] and kg_store.published(lake) == 2
    assert hashes(lake, 1) == hashes(lake, 2)
    assert {p.name: p.read_bytes() for p in (home / "lake" / "vocab").glob("*.parquet")} == vocab_files
    validation = kg_store.manifest(lake, 2).extra["validation"]
    assert validation["success"] and validation["compared_with"] == 1
    lake.verify("kg", kg_store.key(2))
    history = [json.loads(line) for line in (home / "lake" / "kg" / "_HISTORY.jsonl").read_text().splitlines()]
    assert [(h["version"], h["previous"]) for h in history] == [(1, None), (2, 1)]
    again = kgrec("publish", "--date", str(NEXT), env=env)
    assert "already published" in again.stdout

    # The published KG goes to RecBole and KGAT as it is.
    out = home / "exports"
    run = kgrec("export", "recbole", "--out", str(out), "--name", "sample", env=env)
    assert run.returncode == 0 and "KG version 2" in run.stdout, run.stderr
    kg_lines = (out / "sample" / "sample.kg").read_text().splitlines()
    assert kg_lines[0] == "head_id:token\trelation_id:token\ttail_id:token"
    assert len(kg_lines) - 1 == kg_store.manifest(lake, 2).extra["counts"]["triples"]
    run = kgrec("export", "kgat", "--out", str(out / "kgat"), "--version", "1", env=env)
    assert run.returncode == 0 and (out / "kgat" / "kg_final.txt").is_file(), run.stderr
    run = kgrec("export", "kgat", "--out", str(out / "x"), "--version", "9", env=env)
    assert run.returncode == 1 and "KG version 9 does not exist" in run.stderr


def copy_night(lake: Lake, night: date, to: date) -> None:
    """Copy a night's upstream partitions (catalog, interactions, alignment, raw triples) to another night."""
    for dataset in ("catalog", "interactions", "alignment", "raw_triples"):
        for key in lake.partitions(dataset):
            if key.get("run_date") == night.isoformat():
                manifest = lake.manifest(dataset, key)
                lake.write(dataset, {**key, "run_date": to.isoformat()},
                           {name: lake.read(dataset, key, name) for name in manifest.files},
                           config_hash=manifest.config_hash, inputs=manifest.inputs, extra=manifest.extra)


def replace_table(lake: Lake, version: int, table: str, change) -> None:  # noqa: ANN001
    """Rewrite one table of a version (with a consistent manifest), as a bad build would."""
    manifest = kg_store.manifest(lake, version)
    frame = change(lake.read("kg", kg_store.key(version), table))
    lake.write("kg", kg_store.key(version), {table: frame}, config_hash=manifest.config_hash,
               inputs=manifest.inputs, extra=manifest.extra, carry_over=[n for n in manifest.files if n != table])


def dangling_tail(t: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([t, t.head(1).with_columns(pl.lit(2_000_000, pl.Int32).alias("tail_id"))])


def duplicate_triple(t: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([t, t.head(1)])


def unknown_relation(t: pl.DataFrame) -> pl.DataFrame:
    return t.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(999).otherwise(pl.col("relation_id"))
                          .cast(pl.Int32).alias("relation_id"))


def leaked_test_interaction(s: pl.DataFrame) -> pl.DataFrame:
    return s.with_columns(pl.when(pl.col("split") == "valid").then(pl.lit("train")).otherwise("split").alias("split")) \
        .pipe(lambda f: pl.concat([f, s.filter(pl.col("split") == "valid").head(3)]))


def half_the_triples(t: pl.DataFrame) -> pl.DataFrame:
    return t.head(t.height // 2)


@pytest.mark.parametrize(("table", "change", "check"), [
    ("triples", dangling_tail, "no_dangling_tails"),
    ("triples", duplicate_triple, "triples_unique"),
    ("triples", unknown_relation, "relation_in_vocabulary"),
    ("splits", leaked_test_interaction, "no_leakage"),
    ("triples", half_the_triples, "drift_triples"),
])
def test_each_corruption_is_caught_by_name_and_current_stays(home: Path, table: str, change, check: str):
    settings = settings_for(home)
    build(settings, DAY)
    validate(settings, DAY)
    publish(settings, DAY)
    lake = Lake(settings.lake_root)
    good = hashes(lake, 1)
    copy_night(lake, DAY, NEXT)
    version = build(settings, NEXT).version
    assert version == 2
    replace_table(lake, version, table, change)

    with pytest.raises(ValidationFailed, match=check) as failure:
        validate(settings, NEXT)
    assert "_CURRENT stays on version 1" in str(failure.value)
    report = lake.attachment("kg", kg_store.key(version), "validation/report.md").decode()
    assert check in report and "FAIL" in report
    results = json.loads(lake.attachment("kg", kg_store.key(version), "validation/results.json"))
    assert results["success"] is False
    with pytest.raises(PublishRefused, match=f"failed validation .*{check}"):
        publish(settings, NEXT)
    assert kg_store.published(lake) == 1 and hashes(lake, 1) == good
    lake.verify("kg", kg_store.key(1))


def test_publish_needs_a_validated_unchanged_version_and_never_goes_back_in_time(home: Path):
    settings = settings_for(home)
    lake = Lake(settings.lake_root)
    with pytest.raises(LakeError, match="no KG built for 2026-11-21: run `kgrec build --date 2026-11-21` first"):
        validate(settings, DAY)
    build(settings, DAY)
    with pytest.raises(PublishRefused, match="was not validated"):
        publish(settings, DAY)
    validate(settings, DAY)
    replace_table(lake, 1, "triples", lambda t: t.head(t.height - 1))  # changed after validation
    with pytest.raises(PublishRefused, match="changed after it was validated"):
        publish(settings, DAY)
    validate(settings, DAY)
    assert publish(settings, DAY).published

    # A backfill of an older night: built and validated, but _CURRENT does not move back.
    older = date(2026, 11, 1)
    for dataset in ("catalog", "interactions", "alignment"):
        base = home / "lake" / dataset
        shutil.copytree(base / "run_date=2026-11-21", base / "run_date=2026-11-01")
    for source in ("wikidata", "dbpedia"):
        base = home / "lake" / "raw_triples" / f"source={source}"
        shutil.copytree(base / "run_date=2026-11-21", base / "run_date=2026-11-01")
    assert build(settings, older).version == 2
    validate(settings, older)
    result = publish(settings, older)
    assert not result.published and "never moves it back" in result.summary()
    assert kg_store.published(lake) == 1


def test_build_names_the_missing_upstream_step(tmp_path: Path):
    settings = settings_for(tmp_path)
    with pytest.raises(LakeError, match="no catalog/run_date=2026-11-21: run `kgrec ingest --date 2026-11-21`"):
        build(settings, DAY)


def test_a_retired_entity_keeps_its_id_when_an_alignment_is_dropped(home: Path):
    settings = settings_for(home)
    first = build(settings, DAY)
    validate(settings, DAY)
    publish(settings, DAY)
    lake = Lake(settings.lake_root)
    before = lake.read("kg", kg_store.key(first.version), "entities")
    links = lake.read("alignment", D, "links")
    dropped = links.filter(pl.col("status") == "accepted").head(1)
    manifest = lake.manifest("alignment", D)
    lake.write("alignment", D, {"links": links.with_columns(
        pl.when(pl.col("item_id").is_in(dropped["item_id"].implode())).then(pl.lit("unmatched"))
        .otherwise("status").alias("status"))}, config_hash=manifest.config_hash, carry_over=["details"])
    second = build(settings, DAY)
    after = lake.read("kg", kg_store.key(second.version), "entities")
    joined = before.join(after, on="entity_id", suffix="_after")
    assert joined.height == before.height  # no id disappeared
    assert (joined["kind"] == joined["kind_after"]).all()
    assert after["retired"].sum() >= 1  # the item's facts are gone, their entities retired, not renumbered
    store = VocabularyStore(settings.lake_root)
    assert store.read("entities").height == after.height


def files_of(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_rebuilding_the_published_date_with_unchanged_inputs_writes_nothing(home: Path):
    settings = settings_for(home)
    first = build(settings, DAY)
    validate(settings, DAY)
    assert publish(settings, DAY).published
    lake = Lake(settings.lake_root)
    kg_files, vocab_files = files_of(home / "lake" / "kg"), files_of(home / "lake" / "vocab")

    again = build(settings, DAY)
    assert again.version == first.version == kg_store.published(lake) == 1
    assert kg_store.versions(lake) == [1]
    assert again.path == lake.partition_path("kg", kg_store.key(1))
    assert again.counts == first.counts == kg_store.manifest(lake, 1).extra["counts"]
    assert again.coverage == first.coverage
    assert files_of(home / "lake" / "kg") == kg_files  # not a byte, not a timestamp
    assert {k: v[0] for k, v in files_of(home / "lake" / "vocab").items()} == {k: v[0] for k, v in vocab_files.items()}

    checked = validate(settings, DAY)
    assert checked.version == 1 and checked.success and checked.compared_with is None
    result = publish(settings, DAY)
    assert (result.version, result.published, result.previous) == (1, False, 1)
    assert "KG version 1 is already published" in result.summary()
    assert kg_store.versions(lake) == [1] and kg_store.published(lake) == 1
    history = (home / "lake" / "kg" / "_HISTORY.jsonl").read_text().splitlines()
    assert [json.loads(line)["version"] for line in history] == [1]  # no second publish recorded
    lake.verify("kg", kg_store.key(1))

    # a changed input is not a re-run: the next build of the date is a new version
    changed = build(settings_for(home, KGREC_KG__YEAR_BUCKET="5"), DAY)
    assert changed.version == 2 and kg_store.versions(lake) == [1, 2] and kg_store.published(lake) == 1


def backfill(home: Path, older: str) -> None:
    """Copy DAY's upstream partitions to the ``older`` date, as a backfill run of that night would make them."""
    for dataset in ("catalog", "interactions", "alignment"):
        base = home / "lake" / dataset
        shutil.copytree(base / "run_date=2026-11-21", base / f"run_date={older}")
    for source in ("wikidata", "dbpedia"):
        base = home / "lake" / "raw_triples" / f"source={source}"
        shutil.copytree(base / "run_date=2026-11-21", base / f"run_date={older}")


def test_force_publish_rolls_back_to_an_older_version_and_the_cli_flag_does_too(home: Path):
    settings = settings_for(home, KGREC_KG__YEAR_BUCKET="5")
    older = date(2026, 11, 1)
    backfill(home, "2026-11-01")
    lake = Lake(settings.lake_root)
    build(settings, DAY)
    validate(settings, DAY)
    publish(settings, DAY)
    assert build(settings_for(home), older).version == 2  # (10-year buckets: another KG than version 1's)
    with pytest.raises(PublishRefused, match="KG version 2 was not validated"):
        publish(settings, older, force=True)  # force never skips validation
    validate(settings, older)

    kept = publish(settings, older)
    assert not kept.published and "kept _CURRENT" in kept.summary() and "by force" not in kept.summary()
    assert kg_store.published(lake) == 1

    rolled = publish(settings, older, force=True)
    assert (rolled.version, rolled.published, rolled.previous) == (2, True, 1)
    assert "KG version 2 (2026-11-01) published by force, rolling back (was 1)" in rolled.summary()
    assert kg_store.published(lake) == 2
    again = publish(settings, older, force=True)
    assert not again.published and "already published" in again.summary()

    forward = publish(settings, DAY)  # the newer date's version moves _CURRENT forward again without force
    assert forward.published and forward.previous == 2 and "by force" not in forward.summary()
    assert kg_store.published(lake) == 1

    run = kgrec("publish", "--date", "2026-11-01", "--force", env={"KGREC_HOME": str(home)})
    assert run.returncode == 0, run.stderr
    assert "KG version 2 (2026-11-01) published by force, rolling back (was 1)" in run.stdout
    assert kg_store.published(lake) == 2
    history = [json.loads(line) for line in (home / "lake" / "kg" / "_HISTORY.jsonl").read_text().splitlines()]
    assert [(h["version"], h["run_date"], h["previous"]) for h in history] == [
        (1, "2026-11-21", None), (2, "2026-11-01", 1), (1, "2026-11-21", 2), (2, "2026-11-01", 1)]
