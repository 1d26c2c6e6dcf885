"""Great Expectations validation of a built KG, as named suites; the entry point is :mod:`kg_build.validate`.

- :mod:`.spec`: a check as a plain spec (GX expectation type and kwargs on a named frame).
- :mod:`.checks`: the named checks per suite, with the polars joins GX cannot do; :mod:`.drift` the drift suite.
- :mod:`.runner`: evaluates the specs with GX (ephemeral context, pandas frames, quiet).
- :mod:`.result`: the outcomes, with ``report()`` (Markdown), ``summary()`` and ``to_json()``.
"""
