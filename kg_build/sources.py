"""SPARQL source definitions (``sources.toml``): prefixes, candidate rules, labels and relations.

The definitions are configuration: a user adds a domain or a relation by editing the TOML (or a
copy of it named in the profile). Every term is validated when the file is loaded, so a typo fails
at start-up with the file, source, domain and key, not halfway through a nightly run.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kg_build import query as q
from kg_build.align.kinds import KINDS

DEFAULT_DEFINITIONS = Path(__file__).resolve().parent / "sources.toml"


class SourceDefinitionError(ValueError):
    """The definitions file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class CandidateRule:
    path: str
    object: str | None = None


@dataclass(frozen=True)
class Domain:
    """What to pull for one kind of catalog item (films, music artists) from one source."""

    name: str
    candidates: tuple[CandidateRule, ...]
    years: tuple[str, ...]
    external_ids: dict[str, str]
    relations: dict[str, str]  # name -> term
    kinds: tuple[str, ...] = ()  # disambiguator kinds an entity may carry ("film"); others are not candidates

    @property
    def attribute_terms(self) -> tuple[str, ...]:
        """Properties pulled for each candidate besides its labels: years and external ids."""
        return tuple(dict.fromkeys([*self.years, *self.external_ids.values()]))


@dataclass(frozen=True)
class SourceDefinition:
    name: str
    prefixes: dict[str, str]
    labels: tuple[str, ...]
    domains: dict[str, Domain]

    def domain(self, name: str) -> Domain:
        if name not in self.domains:
            raise SourceDefinitionError(
                f"source {self.name} has no domain {name!r} (it has: {', '.join(sorted(self.domains))})"
            )
        return self.domains[name]

    def expand(self, term: str) -> str:
        return q.expand(term, self.prefixes)


def load_definitions(path: Path | None = None) -> dict[str, SourceDefinition]:
    path = path or DEFAULT_DEFINITIONS
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourceDefinitionError(f"{path}: {exc}") from None
    return {name: _source(name, body, path) for name, body in raw.items()}


def _source(name: str, body: dict, path: Path) -> SourceDefinition:
    where = f"{path}: [{name}]"
    try:
        prefixes = dict(body["prefixes"])
        q.prefix_block(prefixes)
        labels = tuple(body["labels"])
        for label in labels:
            q.term(label, prefixes)
        domains = {d: _domain(d, spec, prefixes, f"{where}.domains.{d}") for d, spec in body["domains"].items()}
    except KeyError as exc:
        raise SourceDefinitionError(f"{where}: missing key {exc}") from None
    except q.QueryError as exc:
        raise SourceDefinitionError(f"{where}: {exc}") from None
    if not labels:
        raise SourceDefinitionError(f"{where}: labels must name at least one property")
    return SourceDefinition(name=name, prefixes=prefixes, labels=labels, domains=domains)


def _domain(name: str, spec: dict, prefixes: dict[str, str], where: str) -> Domain:
    try:
        rules = tuple(CandidateRule(path=r["path"], object=r.get("object")) for r in spec["candidates"])
        q.candidate_rules([{"path": r.path, "object": r.object or ""} for r in rules], prefixes)
        years = tuple(spec.get("years", ()))
        ids = dict(spec.get("external_ids", {}))
        relations = dict(spec["relations"])
        kinds = tuple(spec.get("kinds", ()))
        for value in (*years, *ids.values(), *relations.values()):
            q.term(value, prefixes)
    except KeyError as exc:
        raise SourceDefinitionError(f"{where}: missing key {exc}") from None
    except q.QueryError as exc:
        raise SourceDefinitionError(f"{where}: {exc}") from None
    if not relations:
        raise SourceDefinitionError(f"{where}: relations must name at least one property")
    unknown = sorted(set(kinds) - set(KINDS.values()))
    if unknown:
        raise SourceDefinitionError(
            f"{where}: unknown kinds {', '.join(unknown)} (known: {', '.join(sorted(set(KINDS.values())))})"
        )
    return Domain(name=name, candidates=rules, years=years, external_ids=ids, relations=relations, kinds=kinds)
