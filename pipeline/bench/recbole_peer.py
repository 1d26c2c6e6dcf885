"""RecBole 1.2.1 as the benchmark peer: its own virtual environment and one training job per call.

RecBole 1.2.1 needs ``numpy<2`` and ``pandas<3`` (the project runs numpy 2), so it lives in a separate venv
(:func:`ensure_venv`) and runs as a subprocess (:func:`run_peer` starts ``recbole_job.py``, which imports only the
standard library, RecBole and what RecBole is built on). Neither RecBole nor torch is imported here.

- :data:`RECBOLE_MODELS`: our model names -> RecBole's.
- :func:`recbole_config`: our hyperparameters -> RecBole config keys (checked against RecBole 1.2.1's
  ``recbole/properties/model/*.yaml``); a key the model does not take is dropped with a log line.
- :data:`PEER_PATCHES`: the edits :func:`ensure_venv` makes to installed files so that RecBole's KGAT runs with the
  only DGL that installs here (2.1.0) under torch 2.13.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("kgrec.bench")

RECBOLE_VERSION = "1.2.1"
# A local CPU wheel: any other torch spec makes pip download gigabytes of CUDA packages. It is repeated in the
# second install so that pip cannot swap it: torch 2.13.0 needs setuptools>=77.0.3, and with "setuptools<70" pip
# silently fell back to the CUDA build of torch 2.12.1. RecBole's own code paths need no old setuptools (only
# ray's S3 helper and thop's FLOPs counter, which the job does not use, import pkg_resources/distutils).
# pandas<3: under pandas 3's copy-on-write RecBole 1.2.1's in-place NaN filling (Dataset._fill_nan) does nothing.
# dgl: RecBole's KGAT builds its graph with it. 2.1.0 is the newest on PyPI (none has a library built for torch
# 2.13: see PEER_PATCHES); it imports torchdata.datapipes, removed in torchdata 0.10, and pydantic, which it does
# not declare.
TORCH_SPEC = "torch==2.13.0"
PEER_SPECS = (
    TORCH_SPEC, f"recbole=={RECBOLE_VERSION}", "numpy<2", "pandas<3", "dgl==2.1.0", "torchdata==0.9.0",
    "pydantic==2.14.3",
)
STAMP = ".kgrec-peer-installed"
JOB_SCRIPT = Path(__file__).with_name("recbole_job.py")
PROTOCOLS = ("ranking", "ctr")
TAIL_LINES = 40

RECBOLE_MODELS = {
    "bprmf": "BPR",
    "kgcn": "KGCN",
    "kgnnls": "KGNNLS",
    "ripplenet": "RippleNet",
    "cke": "CKE",
    "kgat": "KGAT",
    "pop": "Pop",
}

# Our hyperparameter -> RecBole config key, for every model.
COMMON_KEYS = {
    "lr": "learning_rate",
    "batch_size": "train_batch_size",
    "epochs": "epochs",
    "patience": "stopping_step",
    "seed": "seed",
    "eval_batch_pairs": "eval_batch_size",
}
# Our hyperparameter -> RecBole config key, per RecBole model (its properties/model/<Model>.yaml).
MODEL_KEYS: dict[str, dict[str, str]] = {
    "BPR": {"embedding_dim": "embedding_size"},
    "KGCN": {
        "embedding_dim": "embedding_size",
        "l2": "reg_weight",
        "neighbors": "neighbor_sample_size",
        "hops": "n_iter",
        "aggregator": "aggregator",
    },
    "KGNNLS": {
        "embedding_dim": "embedding_size",
        "l2": "reg_weight",
        "neighbors": "neighbor_sample_size",
        "hops": "n_iter",
        "aggregator": "aggregator",
        "ls_weight": "ls_weight",
    },
    "RippleNet": {
        "embedding_dim": "embedding_size",
        "l2": "reg_weight",
        "hops": "n_hop",
        "memory": "n_memory",
        "kge_weight": "kg_weight",
    },
    # CKE.py: reg_weights[0] weighs the L2 term of the user and item embeddings, reg_weights[1] that of the
    # TransR-projected KG embeddings (see MERGED_KEYS).
    "CKE": {"embedding_dim": "embedding_size", "kg_embedding_dim": "kg_embedding_size"},
    # layers: the output sizes of the propagation layers, as ours (RecBole prepends embedding_size); mess_dropout:
    # one rate for every layer. RecBole spells the aggregators as we do: "bi", "gcn", "graphsage".
    "KGAT": {
        "embedding_dim": "embedding_size",
        "kg_embedding_dim": "kg_embedding_size",
        "layers": "layers",
        "dropout": "mess_dropout",
        "l2": "reg_weight",
        "aggregator": "aggregator_type",
    },
    "Pop": {},
}
# RecBole config keys that take a list of several of our hyperparameters, in this order (all or none given).
MERGED_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "CKE": {"reg_weights": ("l2", "kg_l2")},
}
# Our hyperparameters that the RecBole model hardwires to a value: dropped, with a warning when ours differs.
# RecBole's CKE adds its KG loss to the recommendation loss unweighted (CKE.py: rec_loss, kg_loss, reg_loss are
# summed by the trainer), i.e. with our kg_weight = 1. Its BPR and CKE train with the BPR loss only.
FIXED_VALUES: dict[str, dict[str, Any]] = {
    "BPR": {"cf_loss": "bpr"},
    "CKE": {"kg_weight": 1, "cf_loss": "bpr"},
}
# RecBole models trained pointwise: each positive and each of its sampled negatives is a row of a batch, so its
# train_batch_size counts rows, and a batch of ours (B positives, each with one negative) is 2 B of its rows.
POINTWISE = {"RippleNet": 2}


class PeerError(RuntimeError):
    """The peer environment cannot be installed or a peer job failed; the message says why."""


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` by ``new`` in the installed file ``path`` (relative to site-packages), for reason ``why``."""

    path: str
    old: str
    new: str
    why: str


PEER_PATCHES = (
    Patch(
        "dgl/graphbolt/__init__.py",
        "\n\nload_graphbolt()\n",
        "\n\ntry:  # kgrec peer: no graphbolt library for this torch; RecBole never uses graphbolt\n"
        "    load_graphbolt()\nexcept (FileNotFoundError, ImportError):\n    pass\n",
        "DGL 2.1.0 ships libgraphbolt only for torch 2.0-2.2 and `import dgl` loads it, so it fails under torch 2.13",
    ),
    # RecBole issue #1978: KGAT.init_graph calls two DGL 0.x APIs that DGL >= 1.0 removed; the replacements are
    # DGL's own successors, same result (every node kept; a scipy COO matrix with rows = sources).
    Patch(
        "recbole/model/knowledge_aware_recommender/kgat.py",
        "dgl.edge_subgraph(self.ckg, edge_idxs, preserve_nodes=True)",
        "dgl.edge_subgraph(self.ckg, edge_idxs, relabel_nodes=False)",
        "DGL >= 1.0 has no preserve_nodes argument (relabel_nodes=False replaces it)",
    ),
    Patch(
        "recbole/model/knowledge_aware_recommender/kgat.py",
        '.adjacency_matrix(transpose=False, scipy_fmt="coo")',
        '.adj_external(transpose=False, scipy_fmt="coo")',
        "DGL >= 1.1's adjacency_matrix returns a dgl.sparse matrix (whose library is missing for torch 2.13) and takes "
        "no scipy_fmt; adj_external is the old method",
    ),
)


def ensure_venv(root: Path) -> Path:
    """Create the RecBole venv at ``root`` unless a finished install is stamped there; returns its python.

    Installs ``torch==2.13.0`` first (the local CPU wheel), then RecBole, DGL and their pins, torch pinned again,
    then applies :data:`PEER_PATCHES`. The stamp records the specs and patches, so changing either re-runs this on
    an existing venv (pip keeps what is already right; each patch is applied only where it is not yet).
    """
    python = root / "bin" / "python"
    stamp = root / STAMP
    wanted = _stamp_text()
    if stamp.is_file() and python.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        log.debug("peer venv %s is installed", root)
        return python
    started = time.monotonic()
    if not python.is_file():
        log.info("creating peer venv %s", root)
        # The project's own python3 (a venv made from a venv uses its base interpreter): the torch wheel fits it.
        _check_call([sys.executable, "-m", "venv", str(root)], f"{sys.executable} -m venv")
    for specs in ((TORCH_SPEC,), PEER_SPECS):
        log.info("peer venv: pip install %s", " ".join(specs))
        _check_call([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *specs],
                    f"pip install {' '.join(specs)}")
    site_packages = _site_packages(root)
    for patch in PEER_PATCHES:
        apply_patch(site_packages, patch)
    stamp.write_text(wanted, encoding="utf-8")
    log.info("peer venv %s installed in %.0f s", root, time.monotonic() - started)
    return python


def apply_patch(site_packages: Path, patch: Patch) -> bool:
    """Apply ``patch`` to its file under ``site_packages``; False when it was already applied.

    Idempotent: a file that holds ``patch.new`` is left alone. Raises :class:`PeerError` naming the file when it
    is missing or holds neither text (another version of the package: the patch must be redone for it).
    """
    path = site_packages / patch.path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PeerError(f"cannot patch {path}: {exc}") from exc
    if patch.new in text:
        return False
    if text.count(patch.old) != 1:
        raise PeerError(f"cannot patch {path}: expected the text {patch.old!r} once, found it "
                        f"{text.count(patch.old)} times (needed because {patch.why})")
    path.write_text(text.replace(patch.old, patch.new), encoding="utf-8")
    log.info("peer venv: patched %s (%s)", path, patch.why)
    return True


def recbole_config(model: str, hyper: dict[str, Any], protocol: str) -> dict[str, Any]:
    """RecBole config entries for ``hyper`` (our names) of ``model`` (ours or RecBole's) under ``protocol``.

    Hyperparameters the RecBole model does not take are dropped with a log line; those it hardwires
    (:data:`FIXED_VALUES`) are dropped, with a warning when ours differ; those it takes together as one list
    (:data:`MERGED_KEYS`) must all be given or none. ``protocol`` is only checked: the job itself sets the
    evaluation entries of each protocol.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    name = _recbole_name(model)
    keys = {**COMMON_KEYS, **MODEL_KEYS[name]}
    fixed = FIXED_VALUES.get(name, {})
    parts = {part for ours in MERGED_KEYS.get(name, {}).values() for part in ours}
    config: dict[str, Any] = _merged_entries(name, hyper)
    for key, value in hyper.items():
        if key == "batch_size":
            config[keys[key]] = value * POINTWISE.get(name, 1)
        elif key == "negatives":
            if value != 1:
                log.warning("recbole %s: training with one sampled negative per positive, not negatives=%d: "
                            "RecBole's pairwise sampler (train_neg_sample_args) repeats each positive once per "
                            "negative, which makes an epoch %d times as long", name, value, value)
        elif key in keys:
            config[keys[key]] = value
        elif key in fixed:
            if value != fixed[key]:
                log.warning("recbole %s: dropping hyperparameter %s=%r (RecBole's model fixes it at %r)",
                            name, key, value, fixed[key])
        elif key not in parts:
            log.info("recbole %s: dropping hyperparameter %s=%r (no RecBole equivalent)", name, key, value)
    return config


def _merged_entries(name: str, hyper: dict[str, Any]) -> dict[str, list[Any]]:
    """The :data:`MERGED_KEYS` entries of RecBole model ``name`` for ``hyper``; ValueError when only some parts are
    given (RecBole's default for the missing ones would be silently mixed with ours)."""
    entries = {}
    for key, parts in MERGED_KEYS.get(name, {}).items():
        given = [part for part in parts if part in hyper]
        if len(given) == len(parts):
            entries[key] = [hyper[part] for part in parts]
        elif given:
            missing = [part for part in parts if part not in hyper]
            raise ValueError(f"recbole {name}: {key} takes {', '.join(parts)} together; missing {', '.join(missing)}")
    return entries


def run_peer(
    python: Path,
    *,
    data_path: Path,
    dataset: str,
    model: str,
    protocol: str,
    config: dict[str, Any],
    out_json: Path,
    timeout_s: float,
) -> dict[str, Any]:
    """Train and evaluate RecBole ``model`` on ``data_path/dataset/`` with the peer venv's ``python``.

    ``config`` holds RecBole config keys (see :func:`recbole_config`). The job's output is logged line by
    line; its JSON result (also left at ``out_json``) is returned. Raises :class:`PeerError` with the last
    lines of output when the job fails, times out or writes no result.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    name = _recbole_name(model)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="kgrec-peer-") as tmp:
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        command = [
            str(python), str(JOB_SCRIPT), "--data-path", str(data_path), "--dataset", dataset,
            "--model", name, "--protocol", protocol, "--config", str(config_file), "--out", str(out_json),
        ]
        log.info("recbole %s on %s (%s): starting", name, dataset, protocol)
        returncode, tail = _run_logged(command, timeout_s, f"recbole {name}")
    what = f"recbole {name} on {dataset} ({protocol})"
    if returncode is None:
        raise PeerError(f"{what} timed out after {timeout_s:.0f} s; last output:\n{tail}")
    if returncode != 0:
        raise PeerError(f"{what} failed with exit status {returncode}; last output:\n{tail}")
    try:
        return json.loads(out_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PeerError(f"{what} wrote no readable result at {out_json} ({exc}); last output:\n{tail}") from exc


def _recbole_name(model: str) -> str:
    """RecBole's name of ``model`` given ours (``kgcn``) or RecBole's own (``KGCN``)."""
    if model in RECBOLE_MODELS:
        return RECBOLE_MODELS[model]
    if model in MODEL_KEYS:
        return model
    raise ValueError(f"no RecBole peer for model {model!r}: expected one of {', '.join(RECBOLE_MODELS)}")


def _run_logged(command: list[str], timeout_s: float, prefix: str) -> tuple[int | None, str]:
    """Run ``command``, logging each output line; ``(exit status or None on timeout, last output lines)``."""
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONUNBUFFERED": "1"}
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                encoding="utf-8", errors="replace", start_new_session=True)
    except OSError as exc:
        return 127, f"cannot start {command[0]}: {exc}"
    reader = threading.Thread(target=_pump, args=(proc.stdout, tail, prefix), daemon=True)
    reader.start()
    try:
        returncode: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the job's own process group: nothing is left holding the pipe
        proc.wait()
        returncode = None
    reader.join()
    return returncode, "\n".join(tail)


def _pump(stream: IO[str], tail: collections.deque[str], prefix: str) -> None:
    """Log each line of ``stream`` and keep the last ones in ``tail``."""
    for line in stream:
        line = line.rstrip()
        if line:
            tail.append(line)
            log.info("%s | %s", prefix, line)
    stream.close()


def _check_call(command: list[str], what: str) -> None:
    """Run an install step; raise :class:`PeerError` with the tail of its stderr when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace")
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-TAIL_LINES:])
        raise PeerError(f"{what} failed with exit status {result.returncode}:\n{tail}")


def _site_packages(root: Path) -> Path:
    """The site-packages folder of the venv at ``root``."""
    found = sorted(root.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise PeerError(f"expected one lib/python3*/site-packages in {root}, found {len(found)}")
    return found[0]


def _stamp_text() -> str:
    """What the stamp file records: the install specs and the patched files and texts, so a change re-installs."""
    patches = [f"patch {patch.path}: {patch.new!r}" for patch in PEER_PATCHES]
    return "\n".join([*PEER_SPECS, *patches]) + "\n"
