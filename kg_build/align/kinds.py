"""Disambiguator words and the kind each names ("(1993 film)" -> film), without heavy imports:
the source definitions check their ``kinds`` against it when settings load."""

# Words that make a parenthesised suffix a disambiguator rather than an alternative title.
KINDS = {
    "film": "film", "movie": "film", "miniseries": "tv", "tv series": "tv", "tv film": "film", "tv movie": "film",
    "band": "band", "group": "band", "duo": "band", "musician": "musician", "singer": "musician",
    "rapper": "rapper", "composer": "musician", "dj": "musician", "producer": "musician",
    "singer-songwriter": "musician", "guitarist": "musician", "pianist": "musician", "drummer": "musician",
    "album": "album", "song": "song", "novel": "novel", "play": "play", "musical": "musical", "video game": "game",
    "comics": "comics", "actor": "actor", "actress": "actor", "comedian": "comedian",
    "violinist": "musician", "bassist": "musician", "saxophonist": "musician", "entertainer": "musician",
    "musical project": "band", "production team": "band", "orchestra": "band", "ensemble": "band",
}
