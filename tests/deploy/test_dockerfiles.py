"""The Dockerfiles under docker/: hadolint-clean, non-root, dependency layer before the
source, a build context limited by a per-Dockerfile .dockerignore, and the vLLM entrypoint
script's choice of model.

    .venv/bin/python -m pytest tests/deploy/test_dockerfiles.py -q
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.tools import DOCKER_DIR, DOCKERFILES, REPO_ROOT, tool

R2REC_IMAGES = ("service.Dockerfile", "trainer.Dockerfile")
Runner = Callable[..., subprocess.CompletedProcess[str]]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def copied_sources(dockerfile: Path) -> list[str]:
    sources = []
    for keyword, args in instructions(dockerfile):
        if keyword == "COPY" and "--from" not in args:
            sources += [a.rstrip("/") for a in args.split()[:-1] if not a.startswith("--")]
    return sources


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool("hadolint")), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_expected_dockerfiles_exist() -> None:
    names = {path.name for path in DOCKERFILES}
    assert names == {"service.Dockerfile", "trainer.Dockerfile", "vllm-cpu.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    done = hadolint(dockerfile)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # the `latest` tag
    assert "DL3013" in done.stdout  # an unpinned pip package


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_non_root_numeric_user(dockerfile: Path) -> None:
    users = [args for keyword, args in instructions(dockerfile) if keyword == "USER"]
    assert users, "no USER instruction: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


@pytest.mark.parametrize("name", R2REC_IMAGES)
def test_dependencies_install_before_the_source_is_copied(name: str) -> None:
    steps = instructions(DOCKER_DIR / name)
    copies = [i for i, (keyword, _) in enumerate(steps) if keyword == "COPY"]
    assert steps[copies[0]] == ("COPY", "pyproject.toml ./")
    installs = [i for i, (kw, args) in enumerate(steps) if kw == "RUN" and "-r /tmp/req" in args]
    assert len(installs) == 1 and copies[0] < installs[0] < copies[1]
    assert "torch==2.13.0" in steps[installs[0]][1]


@pytest.mark.parametrize("name", R2REC_IMAGES)
def test_the_image_copies_every_project_package(name: str) -> None:
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(copied_sources(DOCKER_DIR / name))
    assert packages <= copied
    assert PYPROJECT["project"]["readme"] in copied


@pytest.mark.parametrize("name", R2REC_IMAGES)
def test_requirements_snippet_lists_the_pyproject_dependencies(name: str) -> None:
    """The image's RUN line that turns pyproject.toml into requirements, run here."""
    text = (DOCKER_DIR / name).read_text()
    match = re.search(r'python -c "(import tomllib;[^"]+)"', text)
    assert match, "requirements snippet not found"
    done = subprocess.run(
        ["python3", "-c", match.group(1)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.splitlines() == PYPROJECT["project"]["dependencies"]


def test_service_image_serves_on_all_interfaces_with_a_health_check() -> None:
    steps = dict(instructions(DOCKER_DIR / "service.Dockerfile"))
    assert "/healthz" in steps["HEALTHCHECK"]
    assert steps["ENTRYPOINT"] == '["r2rec"]'
    assert '"serve", "--host", "0.0.0.0"' in steps["CMD"]


def test_trainer_image_runs_retrain_with_a_choosable_torch_build() -> None:
    steps = instructions(DOCKER_DIR / "trainer.Dockerfile")
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in steps
    assert steps[0][0] == "ARG" and steps[1] == ("FROM", "${BASE_IMAGE}")
    assert dict(steps)["CMD"].startswith('["retrain"')


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_build_context_excludes_all_but_what_is_copied(dockerfile: Path) -> None:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    rules = [r for r in ignore.read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "*", "the context must start from nothing (keeps .env and .venv out)"
    included = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert set(copied_sources(dockerfile)) == included
    assert not {".env", ".venv", ".r2rec"} & included


class TestVllmEntrypoint:
    """docker/vllm-entrypoint.sh, run with a stand-in `python3` that prints its arguments."""

    @pytest.fixture
    def run(self, tmp_path: Path) -> Runner:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "python3"
        fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
        fake.chmod(0o755)

        def run(root: Path, *args: str, role: str = "") -> subprocess.CompletedProcess[str]:
            env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "MODEL_ROOT": str(root)}
            return subprocess.run(
                ["sh", str(DOCKER_DIR / "vllm-entrypoint.sh"), *args],
                env={**env, "MODEL_ROLE": role} if role else env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        return run

    @staticmethod
    def model(root: Path, name: str) -> Path:
        folder = root / "models" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        return folder

    def test_serves_the_published_model_when_there_is_one(
        self, run: Runner, tmp_path: Path
    ) -> None:
        self.model(tmp_path, "smollm2-135m-instruct")
        published = self.model(tmp_path, "published")
        done = run(tmp_path, "--served-model-name", "r2rec")
        assert done.returncode == 0, done.stderr
        argv = done.stdout.splitlines()
        assert argv[:2] == ["-m", "vllm.entrypoints.openai.api_server"]
        assert argv[argv.index("--model") + 1] == str(published)
        assert argv[-2:] == ["--served-model-name", "r2rec"]

    def test_falls_back_to_the_base_model(self, run: Runner, tmp_path: Path) -> None:
        base = self.model(tmp_path, "smollm2-135m-instruct")
        (tmp_path / "models" / "published").mkdir()  # a folder without config.json
        done = run(tmp_path)
        argv = done.stdout.splitlines()
        assert argv[argv.index("--model") + 1] == str(base)

    def test_no_model_is_an_error_naming_the_fix(self, run: Runner, tmp_path: Path) -> None:
        done = run(tmp_path)
        assert done.returncode == 2
        assert done.stdout == ""
        assert "model-init" in done.stderr

    def test_the_states_role_serves_the_fused_states_as_a_pooling_model(
        self, run: Runner, tmp_path: Path
    ) -> None:
        from reasoning.backends.vllm_states import POOLING_FLAGS

        self.model(tmp_path, "published")
        missing = run(tmp_path, role="states")
        assert missing.returncode == 2 and "publish-fused" in missing.stderr
        states = self.model(tmp_path, "fused/states")
        done = run(tmp_path, "--served-model-name", "states", role="states")
        assert done.returncode == 0, done.stderr
        argv = done.stdout.splitlines()
        assert argv[argv.index("--model") + 1] == str(states)
        flags = argv[argv.index("--runner") : argv.index("--runner") + len(POOLING_FLAGS)]
        assert tuple(flags) == POOLING_FLAGS
        assert argv[-2:] == ["--served-model-name", "states"]
