"""The embedded store keeps every acknowledged POST /interactions across a `kill -9`.

Real processes: the service runs under uvicorn on a loopback port with the tiny model and
the embedded ML-100K graph; it is killed with SIGKILL and started again on the same
$R2REC_HOME, and everything ingested is read back through the API. A second server on the
same journal (or `r2rec serve --workers 2`) is refused with a one-line message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.net import free_port

ROOT = Path(__file__).resolve().parents[2]
UVICORN = [sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory"]
START_TIMEOUT_S = 180

pytestmark = pytest.mark.slow  # real uvicorn processes, killed and restarted


def service_env(home: Path, tiny_model_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2REC_")}
    env.update(
        R2REC_HOME=str(home),
        R2REC_MODEL_PATH=str(tiny_model_dir),
        R2REC_MAX_REASONING_TOKENS="16",
        R2REC_CHAINS_PER_REQUEST="3",
        PYTHONPATH=str(ROOT),
    )
    return env


class Server:
    """One `uvicorn service.main:create_app` process on a free port."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.log = cwd / f"server-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*UVICORN, "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                cwd=cwd,  # no stray .env from the checkout
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited at start:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready in {START_TIMEOUT_S} s:\n{self.output()}")

    def wait_exit(self, timeout: float = START_TIMEOUT_S) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


@pytest.fixture
def servers(r2rec_home: Path, tiny_model_dir: Path, tmp_path: Path) -> Iterator:
    started: list[Server] = []
    env = service_env(r2rec_home, tiny_model_dir)

    def start() -> Server:
        server = Server(env, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def batches() -> list[dict[str, object]]:
    """Five batches: new users on new and old items, some items with metadata, some bare."""
    out = []
    for b in range(5):
        rows = [
            {"user_id": f"dur-u{b}-{k}", "item_id": item, "timestamp": 1_700_000_000 + b * 100 + k}
            for k in range(10)
            for item in (f"dur-i{b}-{k % 3}", "50")
        ]
        items = [
            {"item_id": f"dur-i{b}-{j}", "title": f"Durable {b}.{j}", "attributes": {"b": str(b)}}
            for j in range(2)  # dur-i{b}-2 stays a placeholder
        ]
        out.append({"interactions": rows, "items": items})
    return out


def test_kill_9_loses_no_acknowledged_interaction(servers) -> None:
    first = servers()
    first.wait_ready()
    sent = batches()
    for body in sent:
        reply = httpx.post(f"{first.url}/interactions", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
    first.kill(signal.SIGKILL)  # no shutdown hook runs

    second = servers()
    second.wait_ready()
    rows = [row for body in sent for row in body["interactions"]]  # type: ignore[attr-defined]
    expected: dict[str, set[tuple[str, int]]] = {}
    for row in rows:
        expected.setdefault(row["user_id"], set()).add((row["item_id"], row["timestamp"]))
    found = 0
    for user, pairs in expected.items():
        reply = httpx.get(f"{second.url}/users/{user}/history", params={"n": 200}, timeout=10)
        assert reply.status_code == 200, reply.text
        got = {(e["item"]["item_id"], e["timestamp"]) for e in reply.json()["entries"]}
        assert got == pairs, user
        found += len(got)
    assert found == len(rows) == 100
    for b in range(5):
        for j in range(3):
            item = httpx.get(f"{second.url}/items/dur-i{b}-{j}", timeout=10).json()
            if j < 2:
                assert item["title"] == f"Durable {b}.{j}" and item["attributes"] == {"b": str(b)}
            assert item["placeholder"] is (j == 2)
    assert httpx.get(f"{second.url}/items/50", timeout=10).json()["placeholder"] is False

    # a second server on the same journal does not start, and says why in one line
    third = servers()
    assert third.wait_exit() != 0
    journal = Path(os.environ["R2REC_HOME"]) / "journal" / "ml-100k.jsonl"
    message = f"graph journal {journal.resolve()} is in use by another process"
    assert message in third.output() and "--workers 1" in third.output()

    # the one that holds it still answers and still takes writes
    more = {"interactions": [{"user_id": "dur-late", "item_id": "1", "timestamp": 3}]}
    assert httpx.post(f"{second.url}/interactions", json=more, timeout=30).status_code == 200


def test_r2rec_serve_refuses_a_second_server_and_several_workers(
    r2rec_home: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from graph_store.journal import Journal

    env = service_env(r2rec_home, tiny_model_dir)
    serve = [str(ROOT / ".venv" / "bin" / "r2rec"), "serve", "--port", str(free_port())]
    journal_path = r2rec_home / "journal" / "ml-100k.jsonl"

    workers = subprocess.run(
        [*serve, "--workers", "2"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert workers.returncode == 2
    assert "--workers 2: the embedded graph store" in workers.stderr + workers.stdout
    assert "--workers 1" in workers.stderr + workers.stdout

    journal, _ = Journal.open(journal_path)  # as a running server holds it
    try:
        second = subprocess.run(serve, env=env, cwd=tmp_path, capture_output=True, text=True)
    finally:
        journal.close()
    out = second.stderr + second.stdout
    assert second.returncode == 2, out
    assert f"graph journal {journal_path.resolve()} is in use by another process" in out


def test_uvicorn_with_two_workers_is_refused(
    r2rec_home: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Two workers would each hold their own graph: the one that loses the lock fails to
    start, and uvicorn stops the whole server."""
    process = subprocess.run(
        [*UVICORN, "--port", str(free_port()), "--workers", "2"],
        env=service_env(r2rec_home, tiny_model_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    out = process.stdout + process.stderr
    journal = (r2rec_home / "journal" / "ml-100k.jsonl").resolve()
    assert f"graph journal {journal} is in use by another process" in out
    assert "--workers 1" in out
