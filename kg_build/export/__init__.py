"""Exports of a :class:`~kg_build.tables.KG` for other tools, and the KGAT text format read back.

- :mod:`.recbole`: :func:`write_recbole`, RecBole (1.2.1) atomic files.
- :mod:`.kgat`: :func:`write_kgat`, the text files of KGAT's ``Data/<dataset>/``, and KGAT's conventions.
- :mod:`.kgat_read`: :func:`read_kgat`, a KGAT folder back into a KG; :func:`with_split` re-splits a KG.
- :mod:`.files`: what they share: the errors, the staged folder write (a failed export leaves no
  half-written folder), line reading and writing, the token checks and :func:`fail_at_line`.
"""

from __future__ import annotations

from kg_build.export.files import BenchmarkIncomplete, ExportError, FileFormatError, fail_at_line
from kg_build.export.kgat import write_kgat
from kg_build.export.kgat_read import read_kgat, with_split
from kg_build.export.recbole import write_recbole

__all__ = [
    "BenchmarkIncomplete",
    "ExportError",
    "FileFormatError",
    "fail_at_line",
    "read_kgat",
    "with_split",
    "write_kgat",
    "write_recbole",
]
