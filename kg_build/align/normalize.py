"""Name normalisation shared by every matcher, vectorised over polars columns.

From a raw title or label it derives:

- the **names**: the main name and the alternative names in parentheses ("(a.k.a. Ocean's 11)",
  "Amelie (Fabuleux destin d'Amélie Poulain, Le)"), each with MovieLens-style trailing articles moved
  to the front ("Dark Knight, The" -> "The Dark Knight", also A, An, Les, La, Il, Das, ...);
- the **year** of a trailing "(1995)" and of a disambiguator "(1993 film)";
- the **kind** of a DBpedia/Wikipedia disambiguator: "Alive (1993 film)" gives name "Alive", year
  1993, kind "film"; "(band)", "(musician)", "(rapper)", "(American band)" give band, musician, rapper;
- per name, ``norm``: NFKC, case folded, accents folded, "&" -> "and", punctuation and whitespace
  collapsed; and ``core``: ``norm`` without a leading article, the key exact matching and blocking use.
"""

from __future__ import annotations

import polars as pl

from kg_build.align.kinds import KINDS

# Articles MovieLens moves to the end of a title ("Avventura, L'"), per language.
TRAILING_ARTICLES = (
    "The", "A", "An", "Les", "La", "Le", "L'", "Il", "Lo", "Gli", "I", "Das", "Der", "Die", "Den", "Det", "De",
    "Het", "El", "Los", "Las", "Un", "Une", "Uno", "Una", "Ein", "Eine", "O", "Os", "As", "Les", "Ta", "To", "Hoi",
)
# Leading articles dropped for the ``core`` key (after normalisation, so lower case and no apostrophe).
LEADING_ARTICLES = ("the", "a", "an", "le", "la", "les", "l", "il", "lo", "gli", "das", "der", "die", "el", "los",
                    "las", "un", "une")
# Numbers spelled out or in roman numerals, written as digits by ``norm`` ("Rocky II" = "Rocky 2"). Not
# "i", "v", "x": they are letters in names ("Malcolm X").
NUMERALS = {
    "ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "xi": "11", "xii": "12",
    "xiii": "13", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
}

_YEAR = r"\s*\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$"
_KIND_WORDS = "|".join(sorted((k.replace(" ", r"\s+") for k in KINDS), key=len, reverse=True))
# "(1993 film)", "(film)", "(American band)", "(2004 TV series)", "(Swedish band)"
_DISAMBIGUATOR = rf"(?i)\s*\(((\d{{4}})\s+)?((?:[A-Z][\w.'-]*\s+){{0,3}}?)({_KIND_WORDS})\)\s*$"
_TRAILING = "|".join(a.replace("'", "'") for a in dict.fromkeys(TRAILING_ARTICLES))
_ARTICLE = rf"^(.+?),\s+({_TRAILING})$"


def title_parts(title: pl.Expr) -> pl.Expr:
    """Struct of ``main`` (str), ``alts`` (list[str]), ``year`` (i16), ``kind`` (str) from a raw title."""
    text = title.str.strip_chars()
    year_paren = text.str.extract(_YEAR, 1).cast(pl.Int16, strict=False)
    text = text.str.replace(_YEAR, "")
    kind_word = text.str.extract(_DISAMBIGUATOR, 4).str.to_lowercase().str.replace_all(r"\s+", " ")
    kind_year = text.str.extract(_DISAMBIGUATOR, 2).cast(pl.Int16, strict=False)
    text = text.str.replace(_DISAMBIGUATOR, "")
    alts = text.str.extract_all(r"\(([^()]*)\)").list.eval(
        pl.element().str.strip_prefix("(").str.strip_suffix(")").str.replace(r"(?i)^\s*a\.?k\.?a\.?\s+", "")
        .str.strip_chars()
    ).list.eval(_move_article(pl.element())).list.filter(pl.element() != "")
    main = text.str.replace_all(r"\s*\([^()]*\)", "").str.strip_chars()
    return pl.struct(
        _move_article(main).alias("main"),
        alts.alias("alts"),
        pl.coalesce(year_paren, kind_year).alias("year"),
        kind_word.replace_strict(KINDS, default=None, return_dtype=pl.String).alias("kind"),
    )


def _move_article(name: pl.Expr) -> pl.Expr:
    """"Dark Knight, The" -> "The Dark Knight"; "Avventura, L'" -> "L'Avventura"."""
    article = name.str.extract(_ARTICLE, 2)
    rest = name.str.extract(_ARTICLE, 1)
    joiner = pl.when(article.str.ends_with("'")).then(pl.lit("")).otherwise(pl.lit(" "))
    return pl.when(article.is_not_null()).then(pl.concat_str([article, joiner, rest])).otherwise(name)


def norm(name: pl.Expr) -> pl.Expr:
    """NFKC, case and accent folding, "&" and " + " -> "and", "$" -> "s" (Ke$ha), numerals as digits,
    punctuation and whitespace collapsed."""
    return (
        name.str.replace_all(r"\s\+\s", " & ")
        .str.replace_all("$", "s", literal=True)
        .str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all("ß", "ss", literal=True)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}+", "")
        .str.replace_all("&", " and ", literal=True)
        .str.replace_all(r"['\u2019`]", "")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
        .str.split(" ")
        .list.eval(pl.element().replace(NUMERALS))
        .list.join(" ")
    )


def core(normed: pl.Expr, name: pl.Expr) -> pl.Expr:
    """``norm`` without one leading article (a separate word in ``name``, so not the "A" of "A-Team"):
    the key of exact matching and blocking."""
    articles = "|".join(LEADING_ARTICLES)
    separate = name.str.strip_chars().str.contains(rf"(?i)^(?:{articles})\s|^(?i:l)['\u2019]")
    stripped = normed.str.extract(rf"^(?:{articles})\s+(\S.*)$", 1)
    return pl.when(separate & stripped.is_not_null()).then(stripped).otherwise(normed)


def squash(normed: pl.Expr) -> pl.Expr:
    """``norm`` without spaces ("Mute Math" = "Mutemath", "M*A*S*H" = "MASH"): exact matching's fallback key."""
    return normed.str.replace_all(" ", "", literal=True)
