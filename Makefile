# kgrec — the two commands a new user needs are `make run` and `make test`.
# Both create .venv on first use (torch first, exactly torch==2.13.0, then the pinned lock file).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
KGREC  := $(VENV)/bin/kgrec
STAMP  := $(VENV)/.kgrec-setup

.PHONY: setup run airflow airflow-stop test bench bench-models lock sample clean help

help:
	@echo "make run    set up (first time), then kg_refresh -> kg_train -> kg_score with Airflow's dag.test() on the"
	@echo "           current profile (default: sample), into the warehouse var/warehouse.duckdb"
	@echo "make airflow  airflow standalone on http://127.0.0.1:8080 with the kgrec DAGs (Ctrl-C stops it all)"
	@echo "make airflow-stop  stop a standalone started with DETACH=1"
	@echo "make test   set up (first time) and run the test suite"
	@echo "make setup  create .venv and install the pinned dependencies (idempotent)"
	@echo "make bench  run the benchmark scripts in bench/ (needs ../shared/data)"
	@echo "make bench-models  our models side by side with RecBole 1.2.1 (creates its venv in var/peer)"
	@echo "make lock   re-pin requirements.lock from the current .venv"
	@echo "make sample rebuild data/sample from data/sample/films.toml"
	@echo "make clean  remove var/ (the lake, mirrors, warehouse); keeps .venv"

setup: $(STAMP)

# Reinstalls only when the lock file or pyproject.toml changed since the last install.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing torch==2.13.0 (CPU wheel), then requirements.lock"
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $@

# The whole chain in-process (Airflow's SQLite metadata in var/airflow), local mirrors started and stopped.
run: setup
	$(PY) dags/local.py run $(if $(DATE),--date $(DATE))

# The UI: airflow standalone on 127.0.0.1:$(PORT), in its own process group; DETACH=1 returns once it answers.
PORT ?= 8080
airflow: setup
	$(PY) dags/local.py standalone --port $(PORT) $(if $(DETACH),--detach)

airflow-stop:
	$(PY) dags/local.py stop

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/extract.py
	$(PY) bench/align.py
	$(PY) bench/kg.py
	$(PY) bench/score.py

# The README's model tables: kgcn-music under both protocols (RecBole on the identical split), then the
# movielens profile's own KG (needs `kgrec -p movielens run --with-mirrors` first, for the cold-start split).
bench-models: setup
	mkdir -p var/bench
	$(KGREC) bench models --dataset kgcn-music --protocol ctr --models kgcn,kgnnls --epochs 30 --seeds 3 \
	  --json var/bench/music-ctr.json
	$(KGREC) bench models --dataset kgcn-music --protocol ranking --models ripplenet,kgcn,kgnnls,bprmf \
	  --peer recbole --epochs 30 --seeds 3 --json var/bench/music-ranking.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking \
	  --models bprmf,kgcn,ripplenet --epochs 10 --seeds 3 --json var/bench/ml-ranking.json
	$(KGREC) bench models --dataset kgcn-music --protocol ranking --models bprmf,kgat,cke \
	  --peer recbole --epochs 40 --seeds 3 --json var/bench/music-models2.json
	$(KGREC) bench models --dataset kgcn-music --protocol ranking --epochs 20 --json var/bench/music-ablations.json \
	  --models kgat,kgatax,kgatax:composition=hadamard,kgatax:fusion=none,kgif,kgif:fusion=false,kgif:projection=matrix
	$(KGREC) bench models --dataset kgcn-music --protocol ranking --models pathrec --epochs 8 \
	  --json var/bench/music-pathrec.json
	$(KGREC) bench models --dataset kgcn-music --protocol ranking --models bprmf,cke,kgat,kgif:fusion=false \
	  --peer recbole --epochs 100 --seeds 3 --json var/bench/music-long.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking \
	  --models bprmf,cke --peer recbole --epochs 30 --seeds 3 --json var/bench/ml-cf.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking \
	  --models kgat --peer recbole --epochs 10 --seeds 3 --json var/bench/ml-kgat.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking \
	  --models kgatax,kgif --epochs 10 --json var/bench/ml-models2.json
	$(KGREC) bench models --dataset kgcn-music --protocol ranking --models pathrec --epochs 100 \
	  --json var/bench/music-pathrec-long.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking --models pathrec --epochs 6 \
	  --json var/bench/ml-pathrec.json
	$(KGREC) bench models --dataset kgcn-music --protocol ranking --models cke,cke:cf_loss=bpr:train.negatives=1 \
	  --peer recbole --epochs 100 --seeds 3 --json var/bench/music-cke.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking \
	  --models cke,cke:cf_loss=bpr:train.negatives=1 --peer recbole --epochs 60 --seeds 3 --json var/bench/ml-cke.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking \
	  --models kgnnls,ripplenet --peer recbole --epochs 10 --seeds 3 --json var/bench/ml-models1-peer.json
	$(KGREC) -p movielens bench models --dataset movielens-small --protocol ranking \
	  --models kgcn --peer recbole --epochs 10 --seeds 3 --json var/bench/ml-kgcn-peer.json

# Freezes .venv as it is (after a deliberate `pip install` of a new version) into the lock file.
lock:
	@test -x $(PY) || { echo "no $(VENV) yet: run make setup first"; exit 1; }
	{ echo "# Pinned environment, written by 'make lock'; 'make setup' installs torch==2.13.0 first, then this."; \
	  $(PIP) freeze --all --exclude-editable | grep -v -E '^(pip|kgrec)=='; } > requirements.lock
	@touch $(STAMP)
	@echo "requirements.lock: $$(grep -vc '^#' requirements.lock) pins"

sample: setup
	$(PY) data/sample/build.py

clean:
	rm -rf var
