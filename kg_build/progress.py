"""Progress on long work: a tqdm bar on a terminal, a log line every ``interval_s`` otherwise."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger("kgrec.progress")


class Progress:
    def __init__(self, total: int | None, desc: str, *, unit: str = "it", interval_s: float = 10.0) -> None:
        self.total, self.desc, self.unit, self.interval_s = total, desc, unit, interval_s
        self.done = 0
        self._postfix: dict[str, Any] = {}
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()
        self._last_log = time.monotonic()
        interactive = sys.stderr.isatty()
        self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False) if interactive else None

    def update(self, n: int = 1, **counts: int) -> None:
        """Advance by ``n``; ``counts`` are added to running totals shown beside the bar."""
        with self._lock:
            self.done += n
            for key, value in counts.items():
                self._totals[key] = self._totals.get(key, 0) + value
            if self._bar is not None:
                self._bar.set_postfix(self._totals, refresh=False)
                self._bar.update(n)
            elif time.monotonic() - self._last_log >= self.interval_s:
                self._last_log = time.monotonic()
                log.info("%s: %s", self.desc, self._line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _line(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        extra = ", ".join(f"{k} {v:,}" for k, v in self._totals.items())
        return f"{self.done}{of} {self.unit}s" + (f", {extra}" if extra else "")
