"""Build the kgrec sample from the hand-curated films.toml.

    python data/sample/build.py             write catalog/items.csv and mirror/{wikidata,dbpedia}.nt
    python data/sample/build.py --check     fail if those files are not what films.toml gives
    python data/sample/build.py --resolve   look names up in ../shared/data and rewrite resolved.csv

IRIs in the real Wikidata (wd:Q...) and DBpedia (dbr:...) namespaces are used only for names that
--resolve found in ../shared/data, recorded in resolved.csv with the file that confirms them;
everything else gets an IRI under http://kgrec.invalid/ (a reserved, never-resolving domain).
The build itself needs only this folder, so it runs where ../shared is absent.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import sys
import tomllib
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WD = "http://www.wikidata.org/entity/"
WDT = "http://www.wikidata.org/prop/direct/"
DBR = "http://dbpedia.org/resource/"
DBO = "http://dbpedia.org/ontology/"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SKOS_ALT = "http://www.w3.org/2004/02/skos/core#altLabel"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"
LOCAL = "http://kgrec.invalid/"
ROLES = {"directors": "P57", "cast": "P161", "genres": "P136", "companies": "P272"}
DBPEDIA_ROLES = {"directors": "director", "cast": "starring"}
RESOLVED_COLUMNS = ["kind", "name", "year", "iri", "imdb", "checked_in"]


@dataclass(frozen=True)
class Film:
    title: str
    year: int
    directors: list[str]
    cast: list[str]
    genres: list[str]
    companies: list[str]
    alt: list[str] = field(default_factory=list)
    catalog: str | None = None
    imdb: str | None = None
    catalog_imdb: bool = True
    in_catalog: bool = True
    in_kg: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return (self.title, str(self.year))


def load_films(path: Path = HERE / "films.toml") -> list[Film]:
    with path.open("rb") as fh:
        films = [Film(**entry) for entry in tomllib.load(fh)["film"]]
    seen: set[tuple[str, str]] = set()
    for film in films:
        if film.key in seen:
            raise SystemExit(f"films.toml: {film.title} ({film.year}) appears twice")
        seen.add(film.key)
    return films


# -- build ---------------------------------------------------------------------------------
def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def literal(text: str, lang: str | None = "en") -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"' + (f"@{lang}" if lang else "")


def catalog_genre(genre: str) -> str:
    """'science fiction film' -> 'Science fiction', as a shop's catalog would write it."""
    name = genre.removesuffix(" film")
    return name[:1].upper() + name[1:]


def load_resolved(path: Path = HERE / "resolved.csv") -> dict[tuple[str, str, str], dict[str, str]]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {(r["kind"], r["name"], r["year"]): r for r in csv.DictReader(fh)}


def build(films: list[Film], resolved: dict[tuple[str, str, str], dict[str, str]]) -> dict[str, str]:
    """Return {relative path: file content} for the catalog and the two mirrors."""
    def iri(kind: str, name: str, year: str = "") -> str:
        found = resolved.get((kind, name, year))
        if found:
            return found["iri"]
        if kind == "dbpedia_person":
            return f"{LOCAL}dbpedia/resource/{name.replace(' ', '_')}"
        return f"{LOCAL}wikidata/{kind}/{slug(name)}" + (f"-{year}" if year else "")

    def imdb_of(film: Film) -> str | None:
        found = resolved.get(("film", *film.key))
        return (found or {}).get("imdb") or film.imdb

    items = io.StringIO()
    writer = csv.writer(items, lineterminator="\n")
    writer.writerow(["item_id", "title", "year", "imdb_id", "genres", "directors", "cast"])
    for number, film in enumerate((f for f in films if f.in_catalog), start=1):
        imdb = imdb_of(film) if film.catalog_imdb else None
        writer.writerow([
            f"m{number:04d}", film.catalog or film.title, film.year, imdb or "",
            "|".join(catalog_genre(g) for g in film.genres), "|".join(film.directors), "|".join(film.cast),
        ])

    wd: set[str] = set()
    labels: dict[str, str] = {}
    for film in (f for f in films if f.in_kg):
        subject = iri("film", *film.key)
        wd.add(f"<{subject}> <{RDFS_LABEL}> {literal(film.title)} .")
        wd |= {f"<{subject}> <{SKOS_ALT}> {literal(alt)} ." for alt in film.alt}
        wd.add(f"<{subject}> <{WDT}P31> <{WD}Q11424> .")
        wd.add(f'<{subject}> <{WDT}P577> "{film.year:04d}-01-01T00:00:00Z"^^<{XSD_DATETIME}> .')
        if imdb_of(film):
            wd.add(f"<{subject}> <{WDT}P345> {literal(imdb_of(film), None)} .")
        for role, prop in ROLES.items():
            kind = {"genres": "genre", "companies": "company"}.get(role, "person")
            for name in getattr(film, role):
                obj = iri(kind, name)
                labels[obj] = name
                wd.add(f"<{subject}> <{WDT}{prop}> <{obj}> .")
    wd |= {f"<{obj}> <{RDFS_LABEL}> {literal(name)} ." for obj, name in labels.items()}

    dbp: set[str] = set()
    for film in (f for f in films if f.in_kg):
        found = resolved.get(("dbpedia_film", *film.key))
        if not found:
            continue
        subject = found["iri"]
        dbp.add(f"<{subject}> <{RDF_TYPE}> <{DBO}Film> .")
        dbp.add(f"<{subject}> <{RDFS_LABEL}> {literal(_page_title(subject))} .")
        for role, prop in DBPEDIA_ROLES.items():
            for name in getattr(film, role):
                obj = iri("dbpedia_person", name)
                dbp.add(f"<{subject}> <{DBO}{prop}> <{obj}> .")
                dbp.add(f"<{obj}> <{RDFS_LABEL}> {literal(_page_title(obj))} .")
    return {
        "catalog/items.csv": items.getvalue(),
        "mirror/wikidata.nt": "\n".join(sorted(wd)) + "\n",
        "mirror/dbpedia.nt": "\n".join(sorted(dbp)) + "\n",
    }


def _page_title(resource_iri: str) -> str:
    from urllib.parse import unquote

    return unquote(resource_iri.rsplit("/", 1)[1]).replace("_", " ")


# -- resolve against ../shared/data --------------------------------------------------------
def resolve(films: list[Film], shared: Path) -> list[dict[str, str]]:
    import pyoxigraph as ox

    def store(*files: str) -> ox.Store:
        st = ox.Store()
        for name in files:
            with gzip.open(shared / name, "rb") as fh:
                st.bulk_load(input=fh, format=ox.RdfFormat.N_TRIPLES)
        return st

    wikidata = store(
        "wikidata-movielens-small/wikidata_movie_items.nt.gz", "wikidata-movielens-small/wikidata_movie_facts.nt.gz"
    )
    dbpedia = store("dbpedia-movielens-1m/dbpedia_ml1m_facts.nt.gz", "dbpedia-movielens-1m/dbpedia_ml1m_labels.nt.gz")
    wd_file = "wikidata-movielens-small/wikidata_movie_{items,facts}.nt.gz"
    db_file = "dbpedia-movielens-1m/dbpedia_ml1m_{facts,labels}.nt.gz"
    rows: list[dict[str, str]] = []
    person: dict[tuple[str, str], set[str]] = defaultdict(set)
    problems: list[str] = []

    for film in (f for f in films if f.in_kg):
        names = _title_variants(film)
        values = " ".join(literal(n) for n in names)
        query = f"""
            SELECT DISTINCT ?f ?imdb ?d WHERE {{
              VALUES ?l {{ {values} }}
              {{ ?f <{RDFS_LABEL}> ?l }} UNION {{ ?f <{SKOS_ALT}> ?l }}
              ?f <{WDT}P31> <{WD}Q11424> ; <{WDT}P577> ?d .
              OPTIONAL {{ ?f <{WDT}P345> ?imdb }}
            }}"""
        hits = [(s["f"].value, s["imdb"].value if s["imdb"] else "", s["d"].value[:4]) for s in wikidata.query(query)]
        hits = [h for h in hits if abs(int(h[2]) - film.year) <= 1]
        hits = _confirm_by_role(wikidata, hits, film.directors, f"<{WDT}P57>") or hits
        hits = [h for h in hits if int(h[2]) == film.year] if len(hits) > 1 else hits
        if len(hits) != 1:
            problems.append(f"wikidata film {film.title} ({film.year}): {len(hits)} candidates {hits[:3]}")
        else:
            qid, imdb, _ = hits[0]
            rows.append(dict(kind="film", name=film.title, year=str(film.year), iri=qid, imdb=imdb, checked_in=wd_file))
            for role, prop in ROLES.items():
                if role == "genres":
                    continue
                found = _objects(wikidata, qid, f"<{WDT}{prop}>")
                kind = "company" if role == "companies" else "person"
                for name in getattr(film, role):
                    if name in found:
                        person[(kind, name)].add(found[name])
                    else:
                        near = [lab for lab in found if _fold(lab) == _fold(name)]
                        hint = f", did you mean {near}?" if near else ""
                        problems.append(f"wikidata {film.title} ({film.year}) {role}: {name!r} not found{hint}")
        if film.year <= 2000:
            _resolve_dbpedia(dbpedia, film, rows, person, problems, db_file)

    for (kind, name), iris in sorted(person.items()):
        if len(iris) > 1:
            problems.append(f"{kind} {name!r} resolves to several IRIs: {sorted(iris)}")
            continue
        checked = db_file if kind.startswith("dbpedia") else wd_file
        rows.append(dict(kind=kind, name=name, year="", iri=iris.pop(), imdb="", checked_in=checked))
    for line in problems:
        print("unresolved:", line, file=sys.stderr)
    return sorted(rows, key=lambda r: (r["kind"], r["name"], r["year"]))


def _resolve_dbpedia(dbpedia, film: Film, rows, person, problems, checked_in: str) -> None:
    pages = [f"{film.title} ({film.year} film)", f"{film.title} (film)", film.title, *film.alt]
    values = " ".join(literal(p) for p in pages)
    query = f"""SELECT ?f ?l WHERE {{ VALUES ?l {{ {values} }} ?f <{RDFS_LABEL}> ?l ; <{RDF_TYPE}> <{DBO}Film> . }}"""
    hits = [(s["f"].value, "", str(film.year)) for s in dbpedia.query(query)]
    hits = _confirm_by_role(dbpedia, hits, film.directors, f"<{DBO}director>", strip_disambiguator=True)
    if len(hits) != 1:
        problems.append(f"dbpedia film {film.title} ({film.year}): {len(hits)} confirmed candidates")
        return
    subject = hits[0][0]
    rows.append(
        dict(kind="dbpedia_film", name=film.title, year=str(film.year), iri=subject, imdb="", checked_in=checked_in)
    )
    for role, prop in DBPEDIA_ROLES.items():
        found = _objects(dbpedia, subject, f"<{DBO}{prop}>", strip_disambiguator=True)
        for name in getattr(film, role):
            if name in found:
                person[("dbpedia_person", name)].add(found[name])


def _confirm_by_role(st, hits, names: list[str], prop: str, strip_disambiguator: bool = False):
    """Keep the candidates whose role objects (directors) include one of ``names``."""
    return [h for h in hits if set(names) & set(_objects(st, h[0], prop, strip_disambiguator))]


def _objects(st, subject: str, prop: str, strip_disambiguator: bool = False) -> dict[str, str]:
    query = f"SELECT ?o ?l WHERE {{ <{subject}> {prop} ?o . ?o <{RDFS_LABEL}> ?l }}"
    out = {}
    for s in st.query(query):
        label = s["l"].value
        if strip_disambiguator:
            label = re.sub(r"\s*\([^)]*\)$", "", label)
        out[label] = s["o"].value
    return out


def _title_variants(film: Film) -> list[str]:
    names = [film.title, *film.alt]
    if film.catalog:
        main = re.sub(r"\s*\(.*\)$", "", film.catalog)
        names.append(main)
        match = re.match(r"^(.*), (The|A|An)$", main)
        if match:
            names.append(f"{match.group(2)} {match.group(1)}")
    return list(dict.fromkeys(names))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolve", action="store_true", help="rewrite resolved.csv from ../shared/data")
    parser.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data")
    parser.add_argument("--check", action="store_true", help="exit 1 if the built files are stale")
    parser.add_argument("--out", type=Path, default=HERE, help="write here instead of data/sample")
    args = parser.parse_args(argv)
    films = load_films()
    if args.resolve:
        rows = resolve(films, args.shared)
        with (HERE / "resolved.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=RESOLVED_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        print(f"resolved.csv: {len(rows)} names found in {args.shared}")
    outputs = build(films, load_resolved())
    stale = []
    for rel, content in outputs.items():
        target = args.out / rel
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != content:
                stale.append(rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        print(f"{rel}: {content.count(chr(10)) - (1 if rel.endswith('.csv') else 0)} rows")
    if stale:
        print(f"stale: {', '.join(stale)}: run `make sample`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
