from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pyoxigraph as ox
import pytest
from SPARQLWrapper import JSON, SPARQLWrapper

from pipeline import mirror
from tests.conftest import SAMPLE, free_port, kgrec

WIKIDATA_NT = SAMPLE / "mirror" / "wikidata.nt"


def _distinct_triples(files: list[Path]) -> int:
    triples = set()
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            triples.update(ox.parse(fh, format=ox.RdfFormat.N_TRIPLES))
    return len(triples)


@pytest.fixture
def home(tmp_path: Path):
    yield tmp_path
    for state in mirror.all_statuses(tmp_path):  # never leave a server behind
        mirror.stop(tmp_path, state.name)


@pytest.fixture
def sample_mirror(home: Path) -> mirror.MirrorSpec:
    spec = mirror.MirrorSpec("wikidata", free_port(), mirror.expand_files([WIKIDATA_NT]))
    mirror.start(spec, home)
    return spec


def test_mirror_answers_sparqlwrapper_select(sample_mirror: mirror.MirrorSpec):
    client = SPARQLWrapper(sample_mirror.endpoint, agent="kgrec-tests")
    client.setReturnFormat(JSON)
    client.setQuery("""
        PREFIX wdt: <http://www.wikidata.org/prop/direct/>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        SELECT ?film ?label ?directorLabel WHERE {
          ?film wdt:P345 "tt0468569" ; rdfs:label ?label ; wdt:P57 ?director .
          ?director rdfs:label ?directorLabel .
        }""")
    rows = client.queryAndConvert()["results"]["bindings"]
    assert [(r["film"]["value"], r["label"]["value"], r["directorLabel"]["value"]) for r in rows] == [
        ("http://www.wikidata.org/entity/Q163872", "The Dark Knight", "Christopher Nolan")
    ]


def test_count_is_the_number_of_distinct_triples(sample_mirror: mirror.MirrorSpec):
    assert mirror.count_triples(sample_mirror.endpoint) == _distinct_triples([WIKIDATA_NT])


def test_mirror_listens_on_loopback_only_and_is_read_only(sample_mirror: mirror.MirrorSpec, home: Path):
    pid = mirror.status(home, "wikidata").pid
    addresses = {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet") if c.status == "LISTEN"}
    assert addresses == {"127.0.0.1"}
    before = mirror.count_triples(sample_mirror.endpoint)
    update = urllib.request.Request(
        f"http://127.0.0.1:{sample_mirror.port}/update", data=b"update=CLEAR%20ALL",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(update, timeout=10)
    assert mirror.count_triples(sample_mirror.endpoint) == before


def test_start_is_idempotent_and_reuses_the_loaded_store(sample_mirror: mirror.MirrorSpec, home: Path):
    stores = sorted((home / "mirrors").iterdir())
    state, started = mirror.start(sample_mirror, home)
    assert not started and state.state == "running"
    other = mirror.MirrorSpec("copy", free_port(), sample_mirror.files)
    mirror.start(other, home)
    assert sorted((home / "mirrors").iterdir()) == stores  # same files: no second load


def test_a_second_mirror_on_a_busy_port_says_so(sample_mirror: mirror.MirrorSpec, home: Path):
    clash = mirror.MirrorSpec("other", sample_mirror.port, sample_mirror.files)
    with pytest.raises(mirror.MirrorError, match=rf"port {sample_mirror.port} on 127.0.0.1 is already in use"):
        mirror.start(clash, home)
    assert mirror.status(home, "other").state == "stopped"


def test_busy_port_from_the_cli(home: Path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        done = kgrec("mirror", "start", "--port", str(port), str(WIKIDATA_NT), env={"KGREC_HOME": str(home)})
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr


def test_background_lifecycle_through_the_cli(home: Path):
    port = free_port()
    env = {"KGREC_HOME": str(home)}
    started = kgrec("mirror", "start", "--port", str(port), "--name", "films", str(WIKIDATA_NT), env=env)
    assert started.returncode == 0, started.stderr
    assert "films: running" in started.stdout and f"127.0.0.1:{port}/query" in started.stdout
    # the server outlives the command that started it
    assert mirror.count_triples(f"http://127.0.0.1:{port}/query") == _distinct_triples([WIKIDATA_NT])
    status = kgrec("mirror", "status", env=env)
    assert "films: running" in status.stdout
    stopped = kgrec("mirror", "stop", "films", env=env)
    assert stopped.returncode == 0 and "films: stopped" in stopped.stdout
    mirror.check_port_free(port)  # the port is free again
    again = kgrec("mirror", "stop", "films", env=env)
    assert "no mirror named films was started by kgrec" in again.stdout


def test_stop_never_signals_a_process_it_did_not_start(home: Path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        pid_file = mirror.pid_file(home, "wikidata")
        pid_file.parent.mkdir(parents=True)
        # a pid file whose pid now belongs to another program (pid reuse, or a stale file)
        pid_file.write_text(json.dumps({
            "name": "wikidata", "pid": bystander.pid, "port": 7878, "files": [], "store": "",
            "create_time": psutil.Process(bystander.pid).create_time(), "started_at": "", "log": "",
        }))
        assert mirror.status(home, "wikidata").state == "stale"
        message = mirror.stop(home, "wikidata")
        assert "stale pid file removed" in message
        time.sleep(0.2)
        assert bystander.poll() is None  # still alive
        assert not pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_file_patterns_must_match_n_triples(tmp_path: Path):
    with pytest.raises(mirror.MirrorError, match="no N-Triples file matches"):
        mirror.expand_files(["nowhere/*.nt.gz"], tmp_path)
    (tmp_path / "data.ttl").write_text("")
    with pytest.raises(mirror.MirrorError, match="N-Triples only"):
        mirror.expand_files(["data.ttl"], tmp_path)


def test_a_broken_file_fails_the_load_and_names_it(home: Path, tmp_path: Path):
    bad = tmp_path / "broken.nt"
    bad.write_text("<http://a> <http://b> .\n")
    with pytest.raises(mirror.MirrorError, match="oxigraph could not load .*broken.nt"):
        mirror.start(mirror.MirrorSpec("bad", free_port(), (bad,)), home)
    assert mirror.status(home, "bad").state == "stopped"


@pytest.mark.shared
def test_serve_over_the_shared_wikidata_files_counts_every_distinct_triple(shared_data: Path, tmp_path: Path):
    files = sorted((shared_data / "wikidata-movielens-small").glob("*.nt.gz"))
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("kgrec")), "mirror", "serve", "--port", str(port),
         str(shared_data / "wikidata-movielens-small" / "*.nt.gz")],
        env={"KGREC_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}/query"
        deadline = time.monotonic() + 120
        while not mirror._ready(endpoint):
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        client = SPARQLWrapper(endpoint)
        client.setReturnFormat(JSON)
        client.setQuery("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        n = int(client.queryAndConvert()["results"]["bindings"][0]["n"]["value"])
        assert n == _distinct_triples(files) == 259_220
    finally:
        server.terminate()
        server.wait(timeout=10)
