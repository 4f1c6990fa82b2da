"""What ranks: the published fused ranker, else the published LLM, else the graph scorer.

- `open_fused`: the fused ranker, when one is published (or configured);
- `open_explainer`: its explainer, which writes explain=true's thoughts (``thoughts=model``);
- `open_states`: with vLLM, the pooling server that reads the hidden states its head scores;
- `open_llm`: the LLM backend and the version string of what answers (`resolve_model_path`:
  the in-process checkpoint; `GRAPH_SCORER` while nothing is published);
- `StartupError`: these settings cannot serve; the message says what to fix.

The fused ranker (`reasoning.fused`) scores each candidate as the collaborative base plus
the LLM's hidden-state head; it was fitted for one dataset and one base model, so it is
refused (`StartupError` naming both) when the service serves another dataset, and the
in-process backend then loads that base model, not a published fine-tuned checkpoint.

    fused = open_fused(settings)            # None: the LLM's answer letters rank
    model = fused_model_path(fused)         # the base model folder the head reads
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from reasoning.backends import LLMBackend, make_backend
from reasoning.fused import FusedRanker, StateReader
from service.settings import Settings

log = logging.getLogger("r2rec.service")
# The in-process model runs in a worker thread; a shorter GIL switch interval (default
# 5 ms) lets the event loop answer between the model's Python steps.
GIL_SWITCH_INTERVAL_S = 0.0005


def open_fused(settings: Settings) -> FusedRanker | None:
    """The fused ranker of ``settings.fused_path`` (default: the published one, when
    present); None with ``ranker=llm`` or when nothing is published."""
    from common.paths import published_fused_dir

    if settings.ranker == "llm":
        return None
    folder = settings.fused_path or published_fused_dir()
    if settings.fused_path is None and not (folder / "manifest.json").is_file():
        return None
    try:
        fused = FusedRanker.load(folder)
    except (OSError, ValueError, KeyError) as err:
        raise StartupError(f"fused ranker at {folder} cannot be loaded: {err}") from err
    dataset = fused.manifest.get("dataset")
    if dataset != settings.dataset:
        raise StartupError(
            f"the fused ranker at {folder} was fitted for {dataset!r} but the service serves "
            f"{settings.dataset!r}: set R2REC_DATASET={dataset} or R2REC_RANKER=llm"
        )
    log.info("ranking with the fused ranker at %s (%s)", folder, fused.label)
    return fused


def open_explainer(settings: Settings, fused: FusedRanker | None) -> LLMBackend | None:
    """The fused ranker's explainer (`reasoning.explainer`), in process, when one is
    published and ``thoughts=model``; else None (the thoughts are written from the
    evidence)."""
    if fused is None or fused.explainer is None or settings.thoughts != "model":
        return None
    if settings.llm_backend != "local":
        log.warning("the explainer runs in process only: with vLLM the evidence writes thoughts")
        return None
    log.info("explain=true thoughts by the explainer at %s", fused.explainer)
    return make_backend("local", model_path=str(fused.explainer))


def open_states(settings: Settings, fused: FusedRanker | None) -> StateReader | None:
    """With the vLLM backend and a fused head: the vLLM pooling server of ``states_url``
    serving the folder's ``states/`` model (`reasoning.backends.vllm_states`); None when
    the in-process backend reads the states itself, or when no ``states_url`` is set (the
    collaborative base then ranks, flagged fallback). A head that server cannot give
    the states of is refused (`StartupError` naming the fix)."""
    if settings.llm_backend != "vllm" or fused is None or fused.head is None:
        return None
    if settings.states_url is None:
        log.warning(
            "the vLLM backend returns no hidden states and R2REC_STATES_URL is unset: the "
            "collaborative base ranks"
        )
        return None
    if not fused.head.reads_unit_rms_tokens:
        raise StartupError(
            f"the fused ranker's head reads {fused.head.scale} {fused.head.pooling}-pooled "
            "states, which vLLM cannot serve: publish a head of state_scale rms and last-token "
            "pooling (its folder then holds states/), or unset R2REC_STATES_URL"
        )
    if fused.states is None:
        raise StartupError(
            "the fused ranker's folder holds no states/ for the vLLM states server: publish "
            "it again (r2rec model publish-fused writes it), or unset R2REC_STATES_URL"
        )
    from reasoning.backends.vllm_states import VLLMStates, VLLMStatesConfig

    log.info("the LLM head reads its states from the vLLM pooling server %s", settings.states_url)
    return VLLMStates(
        VLLMStatesConfig(
            base_url=settings.states_url,
            states_dir=fused.states,
            model=settings.states_model,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_s=settings.llm_timeout_s,
        )
    )


def fused_model_path(fused: FusedRanker, settings: Settings) -> Path:
    """The model folder whose hidden states the head reads: ``model_path`` if set, else
    the prepared base model the run read (``$R2REC_HOME/models/<base_model>``)."""
    from common.paths import models_dir

    folder = settings.model_path or models_dir() / str(fused.manifest.get("base_model", ""))
    if not (folder / "config.json").is_file():
        raise StartupError(
            f"the fused ranker reads the hidden states of {folder}, which is missing: run "
            "`r2rec model prepare-base` or set R2REC_MODEL_PATH"
        )
    return folder.resolve()


def fused_version(fused: FusedRanker) -> str:
    """'fused:<run folder name>@<publish time>': changes the cache keys on every publish."""
    run = Path(str(fused.manifest.get("run", "unknown"))).name
    return f"fused:{run}@{int(float(fused.manifest.get('published_unix', 0)))}"


class StartupError(RuntimeError):
    """The service cannot start with these settings; the message says what to fix."""


GRAPH_SCORER = "graph-scorer"  # the version label while no model is published


def resolve_model_path(settings: Settings) -> Path | None:
    """The checkpoint the in-process backend loads: the configured one, else the published
    model, else (only with ``serve_base_model``) the prepared base model. None: nothing
    trained is published yet, so the graph scorer answers until one is."""
    from common.paths import published_dir
    from reasoning.backends.model_folders import default_base_dir

    if settings.model_path:
        candidates = [settings.model_path]
    elif (published_dir() / "config.json").is_file() or not settings.serve_base_model:
        candidates = [published_dir()]
    else:
        candidates = [default_base_dir()]
    for path in candidates:
        if path is not None and (path / "config.json").is_file():
            return path.resolve()
    if not settings.model_path and not settings.serve_base_model:
        return None
    raise StartupError(
        f"no model at {', '.join(map(str, candidates))}: set R2REC_MODEL_PATH or run "
        "`r2rec model prepare-base`"
    )


def open_llm(settings: Settings, fused: FusedRanker | None = None) -> tuple[LLMBackend | None, str]:
    """The backend and the model version string used in cache keys and responses; no
    backend (and `GRAPH_SCORER`) while nothing trained is published. With a ``fused``
    ranker, the in-process backend loads the base model its head reads."""
    if settings.llm_backend == "vllm":
        llm = make_backend(
            "vllm",
            base_url=settings.llm_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )
        if fused is not None:  # its head's states come from `open_states`
            return llm, settings.model_version or fused_version(fused)
        return llm, settings.model_version or settings.llm_model
    if fused is not None:
        path: Path | None = fused_model_path(fused, settings)
        version = settings.model_version or fused_version(fused)
    else:
        path = resolve_model_path(settings)
        version = settings.model_version or (model_version_of(path) if path else GRAPH_SCORER)
    if path is None:
        log.info("no trained model published: the graph scorer answers until one is")
        return None, version
    llm = make_backend("local", model_path=str(path))
    # The model runs in a worker thread; a shorter GIL switch interval (default 5 ms) lets
    # the event loop answer between the model's Python steps instead of waiting them out.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return llm, version


def model_version_of(path: Path) -> str:
    """A model folder's version: for the published model, its run and publish time (so
    every publish changes the cache keys), else the folder name."""
    from common.paths import published_dir

    if path == published_dir().resolve():
        published = published_version()
        if published is not None:
            return published
    return path.name


def published_version() -> str | None:
    """'<run>@<publish time>' of the published model, or None (none, or a bad record)."""
    from common.files import read_json
    from common.paths import published_manifest

    try:
        record = read_json(published_manifest())
    except (OSError, ValueError) as err:
        log.warning("published record unreadable: %s", err)
        return None
    if not record or "run" not in record:
        return None
    return f"{record['run']}@{int(float(record.get('published_unix', 0)))}"
