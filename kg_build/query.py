"""SPARQL query templates (``kg_build/queries/*.rq``) filled with validated, escaped parameters.

A template names its parameters ``{{name}}``. A parameter is either an ``int`` (written as digits)
or a :class:`Fragment`: SPARQL text made by the builders below, never by formatting raw input.
``iri`` checks the SPARQL IRIREF grammar, ``literal`` escapes, ``term`` and ``path`` accept only
declared prefixed names and property-path operators. So a catalog title such as
``x" } ; DROP ALL ; #`` or an IRI with ``>`` in it can never change a query's structure: the title
becomes one escaped string, the IRI is refused with :class:`QueryError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

QUERIES = Path(__file__).resolve().parent / "queries"

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_PREFIXED = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?)?$")
_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# one step of a property path: [^] (<iri> | prefix:local | a) [*+?] [/ or |]
_PATH_STEP = re.compile(r"\s*(\^?)(<[^<>\s]*>|[A-Za-z][A-Za-z0-9_-]*:[A-Za-z0-9_.-]*|a)([*+?]?)\s*([/|]?)\s*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


class QueryError(ValueError):
    """A value that cannot go into a query safely, or a template used wrongly."""


class Fragment(str):
    """SPARQL text made by this module's builders from validated values."""


def iri(value: str) -> Fragment:
    """``<value>`` for an absolute IRI; QueryError for anything that could break out of ``<...>``."""
    if not isinstance(value, str) or ":" not in value or _IRI_FORBIDDEN.search(value):
        raise QueryError(f"not a valid IRI: {value!r}")
    scheme = value.split(":", 1)[0]
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise QueryError(f"not a valid IRI (no scheme): {value!r}")
    return Fragment(f"<{value}>")


def is_valid_iri(value: str) -> bool:
    try:
        iri(value)
    except QueryError:
        return False
    return True


def literal(value: str, lang: str | None = None) -> Fragment:
    """A quoted, escaped string literal, optionally language-tagged."""
    escaped = "".join(_ESCAPES.get(ch, ch) for ch in value)
    if lang is not None and not _LANG.match(lang):
        raise QueryError(f"not a language tag: {lang!r}")
    return Fragment(f'"{escaped}"' + (f"@{lang}" if lang else ""))


def term(value: str, prefixes: Mapping[str, str]) -> Fragment:
    """A property or class from config: ``prefix:local`` (declared prefix), ``<iri>`` or ``a``."""
    if value == "a":
        return Fragment("a")
    if value.startswith("<") and value.endswith(">"):
        return iri(value[1:-1])
    match = _PREFIXED.match(value)
    if not match or match.group(1) not in prefixes:
        raise QueryError(f"not a prefixed name with a declared prefix, an <iri> or 'a': {value!r}")
    return Fragment(value)


def expand(value: str, prefixes: Mapping[str, str]) -> str:
    """The full IRI of a term from config (``wdt:P57`` -> ``http://www.wikidata.org/prop/direct/P57``)."""
    checked = term(value, prefixes)
    if checked == "a":
        return "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
    if checked.startswith("<"):
        return checked[1:-1]
    prefix, local = checked.split(":", 1)
    return prefixes[prefix] + local


def path(value: str, prefixes: Mapping[str, str]) -> Fragment:
    """A property path from config: terms joined by ``/`` or ``|``, each with optional ``^`` and ``*+?``."""
    out, pos = [], 0
    while pos < len(value):
        match = _PATH_STEP.match(value, pos)
        if not match or match.end() == pos:
            raise QueryError(f"not a property path of terms joined by / or |: {value!r}")
        inverse, core, modifier, joiner = match.groups()
        out.append(inverse + term(core, prefixes) + modifier + joiner)
        pos = match.end()
        if not joiner and pos < len(value):
            raise QueryError(f"not a property path of terms joined by / or |: {value!r}")
    if not out or out[-1][-1:] in ("/", "|"):
        raise QueryError(f"not a property path of terms joined by / or |: {value!r}")
    return Fragment("".join(out))


def prefix_block(prefixes: Mapping[str, str]) -> Fragment:
    lines = []
    for name, base in sorted(prefixes.items()):
        if not _PREFIX.match(name):
            raise QueryError(f"not a prefix name: {name!r}")
        lines.append(f"PREFIX {name}: {iri(base)}")
    return Fragment("\n".join(lines))


def iri_list(values: Iterable[str]) -> Fragment:
    return Fragment(" ".join(iri(v) for v in values))


def literal_list(values: Iterable[str], lang: str | None = None) -> Fragment:
    return Fragment(" ".join(literal(v, lang) for v in values))


def property_patterns(predicates: Iterable[str], prefixes: Mapping[str, str]) -> Fragment:
    """``{ ?s P1 ?o BIND(P1 AS ?p) } UNION { ?s P2 ?o BIND(P2 AS ?p) } ...`` for a list of properties."""
    terms = [term(v, prefixes) for v in predicates]
    if not terms:
        raise QueryError("at least one property is needed")
    if "a" in terms:
        raise QueryError("write rdf:type rather than 'a' in a property list (BIND needs an IRI)")
    return Fragment("\n  UNION ".join(f"{{ ?s {t} ?o BIND({t} AS ?p) }}" for t in terms))


def language_filter(var: str, languages: Iterable[str]) -> Fragment:
    """Keep IRIs, untagged literals and literals in ``languages``."""
    if not _VAR.match(var):
        raise QueryError(f"not a variable name: {var!r}")
    tests = " || ".join(f"langMatches(lang(?{var}), {literal(lang)})" for lang in languages if _lang_ok(lang))
    keep = f'!isLiteral(?{var}) || lang(?{var}) = ""' + (f" || {tests}" if tests else "")
    return Fragment(f"FILTER({keep})")


def candidate_rules(rules: Iterable[Mapping[str, str]], prefixes: Mapping[str, str], var: str = "item") -> Fragment:
    """``{ ?item path object } UNION { ?item path [] }`` for the domain's candidate rules."""
    blocks = []
    for rule in rules:
        obj = term(rule["object"], prefixes) if rule.get("object") else "[]"
        blocks.append(f"{{ ?{var} {path(rule['path'], prefixes)} {obj} }}")
    if not blocks:
        raise QueryError("a domain needs at least one candidate rule")
    return Fragment("\n  UNION ".join(blocks))


def _lang_ok(lang: str) -> bool:
    if not _LANG.match(lang):
        raise QueryError(f"not a language tag: {lang!r}")
    return True


@cache
def _template(name: str) -> str:
    path_ = QUERIES / f"{name}.rq"
    if not path_.is_file():
        raise QueryError(f"no query template {path_}")
    return path_.read_text()


def render(name: str, **params: Fragment | int) -> str:
    """Fill ``queries/<name>.rq``; every placeholder must be given, and nothing else."""
    text = _template(name)
    wanted = set(_PLACEHOLDER.findall(text))
    if wanted != set(params):
        raise QueryError(
            f"{name}.rq: missing {sorted(wanted - set(params))}, unexpected {sorted(set(params) - wanted)}"
        )
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | Fragment):
            raise QueryError(f"{name}.rq: parameter {key} must be built by kg_build.query, got {type(value).__name__}")
        if isinstance(value, int) and value < 0:
            raise QueryError(f"{name}.rq: parameter {key} must not be negative")
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), text)


def query_hash(endpoint: str, query: str) -> str:
    """The key of a query's result: sha256 of the endpoint and the exact query text."""
    return hashlib.sha256(f"{endpoint}\n{query}".encode()).hexdigest()
