"""Benchmark: the whole Wikidata fact pull for the 9,549 movies of ../shared/data/wikidata-movielens-small.

    .venv/bin/python bench/extract.py [--fault-rate 0.05] [--seed 1]

Serves both files of wikidata-movielens-small from a local oxigraph mirror, pulls the candidates,
then all facts (whitelisted relations plus the labels of every subject and object) for every
candidate, with an empty cache each time: once direct, once through the fault-injecting proxy of
the tests (429 with Retry-After 1 s, 503, 500, dropped connections, cut bodies, capped results and
responses slower than the client's timeout, each with probability fault-rate / 7). The client
uses the project's defaults except a 5 s timeout (a local mirror answers in well under a second;
the 60 s default would make each injected slow response cost a minute). Prints a Markdown table
for the README and checks that both runs extracted the same triples.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg_build.cache import QueryCache  # noqa: E402
from kg_build.extract import KEY, Extractor, PullSettings  # noqa: E402
from kg_build.sources import load_definitions  # noqa: E402
from kg_build.sparql import ClientSettings, SparqlClient  # noqa: E402
from pipeline import mirror  # noqa: E402
from tests.conftest import SHARED_DATA, free_port  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402


def pull(endpoint: str, workdir: Path) -> dict:
    definition = load_definitions()["wikidata"]
    client = SparqlClient(endpoint, user_agent="kgrec-bench", settings=ClientSettings(timeout_s=5.0), seed=1)
    extractor = Extractor(definition, definition.domain("films"), client, QueryCache(workdir / "cache"), PullSettings())
    began = time.perf_counter()
    items = extractor.candidates()
    candidates_s = time.perf_counter() - began
    queries_before = client.stats.sent
    began = time.perf_counter()
    facts = extractor.facts(items)
    facts_s = time.perf_counter() - began
    return {
        "movies": len(items),
        "candidates_s": candidates_s,
        "facts_s": facts_s,
        "queries": client.stats.sent - queries_before,
        "retried": client.stats.retried,
        "timeouts": client.stats.timeouts,
        "waited_s": client.stats.waited_s,
        "halved": extractor.stats.halved,
        "truncated": extractor.stats.truncated,
        "triples": facts.height,
        "facts": facts.select(KEY),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    files = sorted((SHARED_DATA / "wikidata-movielens-small").glob("*.nt.gz"))
    if not files:
        print(f"{SHARED_DATA}/wikidata-movielens-small not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        spec = mirror.MirrorSpec("bench-wikidata", free_port(), mirror.expand_files(files))
        mirror.start(spec, home)
        try:
            clean = pull(spec.endpoint, home / "clean")
            with FaultProxy(spec.endpoint, fault_rate=args.fault_rate, seed=args.seed, slow_s=6.0) as proxy:
                faulty = pull(proxy.endpoint, home / "faulty")
                injected = sum(1 for action in proxy.actions() if action != "ok")
        finally:
            mirror.stop(home, spec.name)
    same = clean["facts"].equals(faulty["facts"])
    print(f"machine: {platform.node()} {platform.machine()}, {_cpus()} cores, Python {platform.python_version()}")
    print(f"fact pull for {clean['movies']:,} movies, local oxigraph mirror, batch 200, concurrency 1\n")
    print("| run | fact pull | queries | retried | batches halved | results capped | triples | triples/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in (("clean", clean), (f"{args.fault_rate:.0%} faults ({injected} injected)", faulty)):
        print(f"| {name} | {r['facts_s']:.1f} s | {r['queries']} | {r['retried']} | {r['halved']} | "
              f"{r['truncated']} | {r['triples']:,} | {r['triples'] / r['facts_s']:,.0f} |")
    print(f"\ncandidate pull: {clean['candidates_s']:.1f} s; with faults / clean: "
          f"{faulty['facts_s'] / clean['facts_s']:.2f}x, of which {faulty['timeouts']} timeouts at 5 s and "
          f"{faulty['waited_s']:.1f} s of backoff and Retry-After waits; identical triples: {same}")
    return 0 if same else 1


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
