"""kgrec pipeline: settings, the lake, step functions, local SPARQL mirrors and the ``kgrec`` CLI."""

__version__ = "0.1.0"
