# kgrec's Airflow image: Airflow 3.3.2 on Python 3.11 with torch, the pinned dependencies and the kgrec code.
# Built by docker-compose.yml (`build: .`) and run by every Airflow service there, the GPU worker included.

FROM apache/airflow:3.3.2-python3.11

# The code lives in /opt/kgrec (an editable install, so pipeline.settings.PROJECT_ROOT is /opt/kgrec and the
# sample profile's relative paths, data/sample and sql/ resolve there). /opt/kgrec/var is KGREC_HOME, the
# mount point of the shared `kgrec-var` volume; /opt/airflow/auth holds the simple auth manager's passwords.
# Group 0 owns them, group-writable, as the Airflow image expects for any AIRFLOW_UID.
USER root
RUN mkdir -p /opt/kgrec/var /opt/airflow/auth \
    && chown -R airflow:0 /opt/kgrec /opt/airflow/auth \
    && chmod -R g+rwX /opt/kgrec /opt/airflow/auth
USER airflow
WORKDIR /opt/kgrec

# torch first, exactly as `make setup` does. In this Linux image, PyPI's torch==2.13.0 is the CUDA build (it
# pulls its nvidia-* runtime wheels): that is what the GPU worker needs; on workers without a GPU it runs on CPU.
RUN pip install --no-cache-dir torch==2.13.0

# Then the pinned environment. The lock is written on a CPU machine and pins torch==2.13.0+cpu, a build only the
# PyTorch index has: drop that line so pip keeps the CUDA torch above (the lock also pins apache-airflow==3.3.2,
# so the image's Airflow stays as it is).
COPY --chown=airflow:0 requirements.lock ./
RUN sed '/^torch==/d' requirements.lock > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself, without dependencies (they are all installed above); pyproject.toml names README.md.
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 kg_build/ kg_build/
COPY --chown=airflow:0 models/ models/
COPY --chown=airflow:0 pipeline/ pipeline/
COPY --chown=airflow:0 sql/ sql/
COPY --chown=airflow:0 data/sample/ data/sample/
COPY --chown=airflow:0 dags/ dags/
RUN pip install --no-cache-dir --no-deps -e .
