"""Typed settings: one TOML profile plus ``KGREC_*`` environment overrides.

Precedence (highest first): explicit ``overrides`` (CLI, Airflow params) > environment variables
> the profile file > the defaults below. Nested keys use ``__`` in environment variables:
``KGREC_WAREHOUSE__URL`` sets ``warehouse.url``; values that look like JSON lists or objects are
decoded (``KGREC_SOURCES__WIKIDATA__MIRROR__FILES='["a.nt"]'``).

Relative paths resolve against the project root for the built-in profiles and against the
profile file's folder for a profile given by path, never against the current directory, so the
CLI, the tests and an Airflow worker read the same files.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from kg_build.sources import SourceDefinitionError, load_definitions
from pipeline import __version__
from pipeline.errors import PermanentError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
ENV_PREFIX = "KGREC_"
DEFAULT_PROFILE = "sample"


class ConfigError(ValueError, PermanentError):
    """Invalid configuration; the message names every bad key, its source and what is allowed."""


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir", PROJECT_ROOT)
    return value if value.is_absolute() else (Path(base) / value).resolve()


ProjectPath = Annotated[Path, AfterValidator(_resolve_path)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MirrorSettings(_Model):
    """A local oxigraph server standing in for a public endpoint."""

    port: int = Field(ge=1024, le=65535)
    files: list[str] = Field(min_length=1, description="N-Triples files (.nt, .nt.gz); globs allowed")


class SourceSettings(_Model):
    """A SPARQL source. ``endpoint`` defaults to the local mirror when one is configured."""

    kind: str = Field(description="a source of the definitions file (wikidata, dbpedia)")
    endpoint: str | None = None
    mirror: MirrorSettings | None = None

    @model_validator(mode="after")
    def _endpoint(self) -> SourceSettings:
        if self.endpoint is None:
            if self.mirror is None:
                raise ValueError("set endpoint, or a mirror to serve locally")
            object.__setattr__(self, "endpoint", f"http://127.0.0.1:{self.mirror.port}/query")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {self.endpoint!r}")
        return self

    @property
    def is_local(self) -> bool:
        return is_loopback(self.endpoint or "")


class SyntheticSettings(_Model):
    """Seeded synthetic users for a catalog that has no interaction log (the sample)."""

    users: int = Field(default=300, ge=1)
    seed: int = 7
    mean_items: int = Field(default=25, ge=1)
    affinity: float = Field(default=0.8, gt=0.0, le=1.0)


class CatalogSettings(_Model):
    """Where the catalog and its interactions come from."""

    format: Literal["csv", "movielens", "movielens-1m", "lastfm"] = Field(
        description="csv: an items CSV at `path`; the others: the dataset's folder at `path`"
    )
    path: ProjectPath
    interactions: Literal["default", "synthetic", "none"] | ProjectPath = Field(
        default="default",
        description="default: the format's own log (MovieLens ratings, Last.FM plays); "
        "synthetic: seeded synthetic users; none; or a CSV path (user_id,item_id,weight[,ts])",
    )
    synthetic: SyntheticSettings = SyntheticSettings()
    limit: int | None = Field(default=None, ge=1, description="keep only the first N items of the catalog (in "
                              "file order) and their interactions; none: all (a smaller trial run, or a backfill)")


class ExtractSettings(_Model):
    """The SPARQL extraction stage: what to pull, in what batches, and how politely."""

    domain: str = Field(default="films", description="a domain of the source definitions (films, music-artists)")
    definitions: ProjectPath | None = Field(default=None, description="source definitions TOML; default kg_build's")
    fact_entities: Literal["candidates", "aligned", "none"] = Field(
        default="candidates",
        description="whose facts to pull: every candidate, the aligned items (needs an alignment), or none",
    )
    depth: int = Field(default=1, ge=1, le=2)
    per_entity_cap: int = Field(default=100, ge=1, description="second hop: statements pulled per hub, at most")
    batch_size: int = Field(default=200, ge=1, le=5000)
    page_size: int = Field(default=10_000, ge=10)
    languages: list[str] = Field(default=["en"], min_length=1)
    concurrency: int = Field(default=1, ge=1, le=16)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=120.0, ge=0)
    max_retry_after_s: float = Field(default=600.0, ge=0)
    min_interval_s: float = Field(default=0.0, ge=0, description="least time between two requests to a source")
    query_budget: int | None = Field(default=None, ge=1, description="requests per source and run, at most")
    cache_days: int = Field(default=7, ge=0, description="keep cached query results of this many past run dates")


class AlignSettings(_Model):
    """Catalog-to-KG alignment: which matchers, and the thresholds that turn scores into decisions."""

    matchers: list[Literal["exact_id", "exact_label", "fuzzy", "embedding"]] = Field(
        default=["exact_id", "exact_label", "fuzzy", "embedding"], min_length=1,
        description="the matchers to run; they always run in the order exact_id, exact_label, fuzzy, embedding, "
        "and manual overrides are applied last",
    )
    accept: float = Field(default=0.9, ge=0, le=1, description="least score of an accepted link")
    review: float = Field(default=0.6, ge=0, le=1, description="least score of an ambiguous link (for review)")
    min_margin: float = Field(default=0.05, ge=0, le=1, description="least lead over the runner-up to accept")
    year_tolerance: int = Field(default=1, ge=0, le=5, description="years apart that still match")
    fuzzy_scorer: Literal["ratio", "token_sort_ratio", "token_set_ratio", "WRatio", "QRatio"] = "token_sort_ratio"
    fuzzy_cutoff: float = Field(default=0.85, ge=0, le=1)
    embedding_cutoff: float = Field(default=0.85, ge=0, le=1)
    top_k: int = Field(default=10, ge=1, le=100, description="nearest entity names per item name")
    overrides: ProjectPath | None = Field(
        default=None, description="curated overrides CSV; default <home>/alignment/overrides.csv"
    )

    @model_validator(mode="after")
    def _order(self) -> AlignSettings:
        if self.review > self.accept:
            raise ValueError(f"review ({self.review}) must not exceed accept ({self.accept})")
        if len(set(self.matchers)) != len(self.matchers):
            raise ValueError("a matcher is listed twice")
        return self


class KGSettings(_Model):
    """KG assembly (build), interactions and splits, and the publish gate (validate)."""

    inverse_relations: bool = Field(
        default=False, description="add each relation's inverse as its own relation id (as KGAT does)"
    )
    year_bucket: int = Field(default=10, ge=0, le=100,
                             description="dates become year-bucket entities this many years wide; 0 drops them")
    min_tail_degree: int = Field(default=1, ge=1, description="drop attribute tails with fewer triples than this")
    max_tail_degree: int | None = Field(
        default=None, ge=1, description="keep at most this many triples per attribute tail (hubs); none: no cap"
    )
    implicit_threshold: float | None = Field(
        default=None, description="least interaction weight counted as positive (MovieLens 4.0); none: all"
    )
    valid: float = Field(default=0.1, ge=0, lt=1, description="share of each user's interactions for validation")
    test: float = Field(default=0.2, ge=0, lt=1, description="share of each user's interactions for test")
    cold_items: float = Field(default=0.1, ge=0, lt=1,
                              description="share of items held out whole (all their interactions in cold_test)")
    temporal: bool = Field(default=False, description="split by time (latest interactions are the test)")
    max_shrink: float = Field(default=0.2, ge=0, le=1,
                              description="validate: counts may shrink at most this much vs the published KG")
    max_growth: float | None = Field(default=1.0, ge=0,
                                     description="validate: counts may grow at most this much; none: no limit")

    @model_validator(mode="after")
    def _shares(self) -> KGSettings:
        if self.valid + self.test >= 1:
            raise ValueError(f"valid + test must be below 1 (got {self.valid} + {self.test})")
        return self


class TrainSettings(_Model):
    """Model training (``kgrec train``, the kg_train DAG): which models, on which protocol."""

    models: list[str] = Field(default=["kgcn"], min_length=1,
                              description="models to train on each published KG (names of models.MODELS, checked "
                              "when training starts, so loading settings never imports torch)")
    protocol: Literal["ranking", "ctr"] = Field(default="ranking", description="validation protocol for early "
                                                "stopping: ranking (recall@20) or ctr (AUC)")
    epochs: int | None = Field(default=None, ge=1, description="cap on epochs; none: the model's default")
    hyper: dict[str, dict[str, Any]] = Field(
        default={}, description="per-model overrides of models/defaults.toml, e.g. {kgcn = {hops = 2}}"
    )
    tolerance: float = Field(default=0.05, ge=0, le=1, description="promotion gate: a new version is promoted "
                             "unless its test metric is more than this fraction below the promoted version's")
    gate_metric: str | None = Field(default=None, description="the gate's test metric; none: recall@20 (ranking), "
                                    "auc (ctr), mrr (link prediction)")
    queue: str | None = Field(default=None, description="Airflow queue of the training tasks (e.g. gpu, served by "
                              "the GPU Celery worker); the kg_train DAG reads KGREC_TRAIN__QUEUE when parsed")


# score.max_path_degree's default, measured with 3 paths for each user's top 3 items: on kgcn-music (max degree 943)
# a cap of 1000 drops no path; on kgat-last-fm's KG every cap from 100 to 10,000 drops the same 99.8% of the 3-hop
# paths (through its entity of 64,386 edges) and changes under 1% of the paths shown; on its collaborative graph
# (KGAT) 1000 drops 95.3%, 100 drops 98.1%. On a GPU, 100k users' explanations took 4.2 s at 1000, 3.2 s at 100 and
# 4.5 s uncapped (KGAT, the costliest): the cap is about what is worth showing (hubs) more than about cost.
MAX_PATH_DEGREE = 1000


class ScoreSettings(_Model):
    """Batch scoring (``kgrec score``, the kg_score DAG): which model, how many items, how many explanations."""

    model: str | None = Field(default=None, description="model to score with; none: the first of train.models")
    k: int = Field(default=20, ge=1, le=1000, description="recommendations per user")
    paths: int = Field(default=3, ge=0, le=10, description="explanation paths per recommended item (0: none)")
    explain_top: int | None = Field(default=None, ge=1, description="explain only each user's first N "
                                    "recommendations; none: every recommendation")
    max_path_degree: int | None = Field(default=MAX_PATH_DEGREE, ge=1, description="3-hop explanation paths only "
                                        "through middle entities with at most this many edges (a path through a "
                                        "hub explains nothing); none: every path")
    chunk_users: int = Field(default=1024, ge=1, description="users scored per score_all call")
    export: bool = Field(default=False, description="also write the lists as Parquet to lake/recommendations")


class WarehouseSettings(_Model):
    """SQLAlchemy URL of the warehouse; default ``duckdb:///<home>/warehouse.duckdb``."""

    url: str | None = None
    retention_days: int = Field(default=30, ge=1, description="days of scoring history kept per model, counted "
                                "back from its newest run date")
    checks: bool = Field(default=True, description="run sql/checks in each scoring run's transaction (a "
                         "violation rolls the run back)")

    @model_validator(mode="after")
    def _scheme(self) -> WarehouseSettings:
        if self.url is not None:
            scheme = urlsplit(self.url).scheme
            if scheme not in ("duckdb", "postgresql", "postgresql+psycopg"):
                raise ValueError(
                    f"url scheme {scheme!r} is not supported: use duckdb:///FILE or "
                    "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
                )
        return self


class AirflowSettings(_Model):
    """Orchestration settings the DAG files read from the environment when parsed (no file I/O at parse time)."""

    refresh_cron: Annotated[str, Field(pattern=r"^\S+( \S+){4}$")] = Field(
        default="0 2 * * *", description="kg_refresh's schedule (UTC cron, five fields); the DAG reads "
        "KGREC_AIRFLOW__REFRESH_CRON")


class Settings(_Model):
    """Everything a step needs; loaded once at the edge by :func:`load_settings`."""

    profile: str = DEFAULT_PROFILE
    home: ProjectPath = Path("var")
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    seed: int = 42
    contact: str | None = Field(
        default=None, description="email or URL sent in the User-Agent to public endpoints"
    )
    catalog: CatalogSettings
    sources: dict[str, SourceSettings] = Field(min_length=1)
    extract: ExtractSettings = ExtractSettings()
    align: AlignSettings = AlignSettings()
    kg: KGSettings = KGSettings()
    train: TrainSettings = TrainSettings()
    score: ScoreSettings = ScoreSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    airflow: AirflowSettings = AirflowSettings()

    @model_validator(mode="after")
    def _finish(self) -> Settings:
        public = [name for name, src in self.sources.items() if not src.is_local]
        if public and not self.contact:
            raise ValueError(
                f"sources {', '.join(public)} use public endpoints: set contact (an email or URL, "
                "e.g. KGREC_CONTACT=ops@example.org); Wikidata's User-Agent policy requires one"
            )
        if self.warehouse.url is None:
            url = f"duckdb:///{self.home / 'warehouse.duckdb'}"
            object.__setattr__(self, "warehouse", self.warehouse.model_copy(update={"url": url}))
        self._check_definitions()
        return self

    def _check_definitions(self) -> None:
        try:
            definitions = load_definitions(self.extract.definitions)
        except SourceDefinitionError as exc:
            raise ValueError(f"extract.definitions: {exc}") from None
        for name, src in self.sources.items():
            if src.kind not in definitions:
                raise ValueError(
                    f"sources.{name}.kind: {src.kind!r} is not defined (defined: {', '.join(sorted(definitions))})"
                )
            domains = definitions[src.kind].domains
            if self.extract.domain not in domains:
                raise ValueError(
                    f"extract.domain: {self.extract.domain!r} is not a domain of source {src.kind} "
                    f"(it has: {', '.join(sorted(domains))})"
                )

    @property
    def lake_root(self) -> Path:
        return self.home / "lake"

    @property
    def overrides_path(self) -> Path:
        return self.align.overrides or self.home / "alignment" / "overrides.csv"

    @property
    def user_agent(self) -> str:
        return f"kgrec/{__version__}" + (f" ({self.contact})" if self.contact else "")

    def redacted(self) -> dict[str, Any]:
        """A JSON-able view with the warehouse password masked, for logs and manifests."""
        data = self.model_dump(mode="json")
        data["warehouse"]["url"] = redact_url(data["warehouse"]["url"])
        return data


def is_loopback(url: str) -> bool:
    """Does ``url`` point at this machine (localhost, 127.0.0.0/8, ::1)?"""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def config_hash(model: BaseModel) -> str:
    """Stable sha256 of a settings (sub-)object, the ``config_hash`` of lake manifests."""
    data = model.model_dump(mode="json")
    if isinstance(model, Settings):
        data = model.redacted()
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_settings(
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Load and validate settings; raise :class:`ConfigError` naming every bad key.

    ``profile`` is a built-in profile name or a path to a ``.toml`` file; default
    ``$KGREC_PROFILE`` or ``sample``.
    """
    env = dict(os.environ if environ is None else environ)
    name = profile or env.get(f"{ENV_PREFIX}PROFILE") or DEFAULT_PROFILE
    path, base_dir = _profile_file(name)
    try:
        with path.open("rb") as fh:
            file_data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {path}: not valid TOML: {exc}") from None

    env_data, env_keys = _env_overrides(env)
    merged = deep_merge(file_data, env_data)
    merged = deep_merge(merged, overrides or {})
    merged["profile"] = name if path.parent == PROFILES_DIR else str(path)
    try:
        return Settings.model_validate(merged, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, path, env_keys, overrides or {})) from None


def _profile_file(name: str) -> tuple[Path, Path]:
    if name.endswith(".toml") or os.sep in name:
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"profile file {path} does not exist")
        return path, path.parent
    path = PROFILES_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(
            f"unknown profile {name!r}: choose one of {', '.join(builtin_profiles())}, "
            "or give the path of a .toml file"
        )
    return path, PROJECT_ROOT


def _env_overrides(env: dict[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    data: dict[str, Any] = {}
    keys: dict[tuple[str, ...], str] = {}
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var == f"{ENV_PREFIX}PROFILE":
            continue
        key = tuple(part.lower() for part in var[len(ENV_PREFIX):].split("__"))
        value: Any = raw
        if raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                pass  # left as a string; validation reports it against the key
        node = data
        for part in key[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {var} conflicts with another KGREC_ variable")
        node[key[-1]] = value
        keys[key] = var
    return data, keys


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` on it, nested tables merged key by key (``top`` wins)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _format_errors(
    exc: ValidationError,
    path: Path,
    env_keys: dict[tuple[str, ...], str],
    overrides: dict[str, Any],
) -> str:
    lines = [f"invalid configuration (profile {path}):"]
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        key = ".".join(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and not isinstance(err["input"], dict):
            msg += f" (got {err['input']!r})"
        source = _source_of(loc, env_keys, overrides, path)
        lines.append(f"  - {key}: {msg} [{source}]")
    return "\n".join(lines)


def _source_of(
    loc: tuple[str, ...], env_keys: dict[tuple[str, ...], str], overrides: dict[str, Any], path: Path
) -> str:
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in env_keys:
            return f"from environment variable {env_keys[loc[:depth]]}"
    if not loc:
        return f"from {path.name}"
    node: Any = overrides
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            break
        node = node[part]
    else:
        return "from overrides"
    return f"from {path.name}"
