"""What a validation found: :class:`Outcome` per check, :class:`SuiteResult` per suite, :class:`ValidationResult`.

``report()`` is Markdown for a person (terminal or PR), ``summary()`` a small dict for the manifest and
``to_json()`` everything, the raw GX results included, for ``validation/`` beside the KG.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

CELL = 60  # widest cell of an example table
KWARGS = 160  # longest kwargs shown in the report (value sets can be long)


@dataclass(frozen=True)
class Outcome:
    """One check's result; ``examples`` are offending rows, at most ``examples`` of them."""

    name: str
    suite: str
    expectation: str
    kwargs: dict[str, Any]
    success: bool
    observed: Any
    unexpected_count: int | None
    examples: list[dict[str, Any]]
    frame: str = ""
    expects: str = ""
    error: str | None = None  # GX raised while evaluating the check (which then fails)


@dataclass(frozen=True)
class SuiteResult:
    name: str
    success: bool
    expectations: list[Outcome]
    raw: list[dict[str, Any]] = field(default_factory=list, repr=False)  # GX's to_json_dict(), one per frame

    def failed(self) -> list[Outcome]:
        return [o for o in self.expectations if not o.success]


@dataclass(frozen=True)
class ValidationResult:
    success: bool
    suites: list[SuiteResult]
    seconds: float
    notes: list[str] = field(default_factory=list)  # e.g. why a suite did not run

    def failed(self) -> list[Outcome]:
        return [o for s in self.suites for o in s.failed()]

    def outcomes(self) -> list[Outcome]:
        return [o for s in self.suites for o in s.expectations]

    def check(self, name: str) -> Outcome:
        """The outcome of the check ``name`` (KeyError when no suite ran it)."""
        for outcome in self.outcomes():
            if outcome.name == name:
                return outcome
        raise KeyError(f"no check named {name!r} ran; checks: {[o.name for o in self.outcomes()]}")

    def summary(self) -> dict[str, Any]:
        """For the manifest: success, checks run and failed, which failed, pass/fail per suite, seconds."""
        failed = self.failed()
        return {
            "success": self.success,
            "checks": len(self.outcomes()),
            "failed": len(failed),
            "failed_checks": [o.name for o in failed],
            "suites": {s.name: s.success for s in self.suites},
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """Everything: summary, every outcome and the raw GX validation results per suite."""
        doc = {
            **self.summary(),
            "seconds": self.seconds,
            "suites": [
                {"name": s.name, "success": s.success, "expectations": [asdict(o) for o in s.expectations],
                 "gx": s.raw}
                for s in self.suites
            ],
        }
        return json.dumps(doc, indent=1, default=str)

    def report(self) -> str:
        """Markdown: PASS/FAIL, a table of suites, then every failed check with its example rows."""
        outcomes, failed = self.outcomes(), self.failed()
        lines = [
            f"# KG validation: {'PASS' if self.success else 'FAIL'}",
            "",
            f"{len(outcomes) - len(failed)} of {len(outcomes)} checks passed, {len(self.suites)} suites, "
            f"{self.seconds:.2f} s.",
            *(f"Note: {note}" for note in self.notes),
            "",
            "| suite | checks | failed | result |",
            "|---|---:|---:|---|",
            *(f"| {s.name} | {len(s.expectations)} | {len(s.failed())} | {'pass' if s.success else 'FAIL'} |"
              for s in self.suites),
        ]
        if failed:
            lines += ["", "## Failed checks"]
        for o in failed:
            lines += ["", f"### {o.name} ({o.suite})", "", f"- expects: {o.expects}",
                      f"- GX: `{o.expectation}({_kwargs(o.kwargs)})` on `{o.frame}`"]
            if o.observed is not None:
                lines.append(f"- observed: {_cell(o.observed, width=200)}")
            if o.unexpected_count is not None:
                shown = f" (showing {len(o.examples)})" if 0 < len(o.examples) < o.unexpected_count else ""
                lines.append(f"- offending rows: {o.unexpected_count:,}{shown}")
            if o.error:
                lines.append(f"- error: {o.error}")
            if o.examples:
                lines += ["", *_table(o.examples)]
        return "\n".join(lines) + "\n"


def _kwargs(kwargs: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return text if len(text) <= KWARGS else text[: KWARGS - 3] + "..."


def _cell(value: Any, width: int = CELL) -> str:
    text = "null" if value is None else json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(rows: list[dict[str, Any]]) -> list[str]:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows),
    ]
