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

# Articles MovieLens moves to the end of a title ("Avventura, L'"), per language.
TRAILING_ARTICLES = (
    "The", "A", "An", "Les", "La", "Le", "L'", "Il", "Lo", "Gli", "I", "Das", "Der", "Die", "Den", "Det", "De",
    "Het", "El", "Los", "Las", "Un", "Une", "Uno", "Una", "Ein", "Eine", "O", "Os", "As", "Les", "Ta", "To", "Hoi",
)
# Leading articles dropped for the ``core`` key (after normalisation, so lower case and no apostrophe).
LEADING_ARTICLES = ("the", "a", "an", "le", "la", "les", "l", "il", "lo", "gli", "das", "der", "die", "el", "los",
                    "las", "un", "une")
# Words that make a parenthesised suffix a disambiguator rather than an alternative title.
KINDS = {
    "film": "film", "movie": "film", "miniseries": "tv", "tv series": "tv", "tv film": "film", "tv movie": "film",
    "band": "band", "group": "band", "duo": "band", "musician": "musician", "singer": "musician",
    "rapper": "rapper", "composer": "musician", "dj": "musician", "producer": "musician",
    "singer-songwriter": "musician", "guitarist": "musician", "pianist": "musician", "drummer": "musician",
    "album": "album", "song": "song", "novel": "novel", "play": "play", "musical": "musical", "video game": "game",
    "comics": "comics", "actor": "actor", "actress": "actor",
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
    """NFKC, case and accent folding, "&" -> "and", punctuation and whitespace collapsed."""
    return (
        name.str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all("ß", "ss", literal=True)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}+", "")
        .str.replace_all("&", " and ", literal=True)
        .str.replace_all(r"['\u2019`]", "")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
    )


def core(normed: pl.Expr) -> pl.Expr:
    """``norm`` without one leading article: the key of exact matching and blocking."""
    pattern = rf"^(?:{'|'.join(LEADING_ARTICLES)})\s+(\S.*)$"
    return pl.coalesce(normed.str.extract(pattern, 1), normed)
