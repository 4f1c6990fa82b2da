"""The rating model POST /rate serves: a published rating head blended with a baseline.

A published rating model (`training.rating.publish`, ``$R2REC_HOME/models/rating/`` or
``R2REC_RATING_MODEL_PATH``) is a rating head (a checkpoint that reads the rating after
the grounded steps of `reasoning.rating_template`) with a card naming its partner, a
classical baseline (e.g. biased MF with its hyper-parameters chosen on valid), and the
blend weight ``w`` chosen on valid: the served rating is ``(1 - w) * partner + w * head``.

The partner is fitted here on the ratings the graph store holds (`GraphStore.export`),
in a worker thread, once at start-up and then every ``rating_refit_s`` seconds, so the
ratings written through POST /interactions reach it; until its first fit, and for ids it
has not seen (it falls back to the means it knows), the head answers alone or with what
the partner knows, and the response says which (``basis``).

The head runs in its own backend: in process (the folder's checkpoint; a newly published
one is switched in by the model watch, `newer_published`), or on vLLM as
the served model ``R2REC_RATING_LLM_MODEL`` (the merged folder as a second model, or the
folder's ``adapter/`` through ``--enable-lora --lora-modules NAME=DIR``).

    rating = open_rating_model(settings)        # None: no rating model published
    await rating.refit(graph)                   # fit the partner on the store's ratings
    rating.blend(head=3.6, user_id="42", item_id="7")   # -> (rating, partner's prediction)
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.files import read_json
from graph_store.base import GraphStore
from reasoning.backends import LLMBackend, make_backend
from reasoning.rating_models import Predictor, fit_baseline
from reasoning.rating_template import HEAD_READING, RATING_CARD
from service.settings import Settings

log = logging.getLogger("r2rec.service")


class RatingModelError(RuntimeError):
    """The configured rating model folder cannot be served; the message says why."""


@dataclass
class RatingModel:
    """The head's backend, its card, and the partner fitted on the store's ratings."""

    llm: LLMBackend
    version: str
    blend_with: str
    blend_weight: float
    blend_params: dict[str, Any]
    partner: Predictor | None = None
    fitted_ratings: int = 0
    fitted_unix: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def partner_rating(self, user_id: str, item_id: str) -> float | None:
        """The partner's prediction, or None until it is fitted."""
        if self.partner is None:
            return None
        return float(self.partner([(user_id, item_id)])[0])

    def blend(self, head: float, user_id: str, item_id: str) -> tuple[float, float | None]:
        """(served rating, the partner's prediction): the head alone until the partner is
        fitted."""
        partner = self.partner_rating(user_id, item_id)
        if partner is None:
            return head, None
        return (1 - self.blend_weight) * partner + self.blend_weight * head, partner

    async def refit(self, graph: GraphStore) -> None:
        """Fit the partner on every rating the store holds (a failure keeps the old fit)."""
        async with self._lock:
            started = time.perf_counter()
            frame = (await graph.export("rating-partner")).interactions
            frame = frame.loc[frame["rating"].notna()]
            if frame.empty:
                log.warning("rating partner: the store holds no ratings; the head rates alone")
                return
            self.partner = await asyncio.to_thread(
                fit_baseline, self.blend_with, frame, self.blend_params
            )
            self.fitted_ratings, self.fitted_unix = len(frame), time.time()
            log.info(
                "rating partner %s fitted on %d ratings in %.1f s",
                self.blend_with,
                len(frame),
                time.perf_counter() - started,
            )

    async def aclose(self) -> None:
        await self.llm.aclose()


def rating_model_folder(settings: Settings) -> Path | None:
    """The configured folder, else the published one if it holds a card, else None."""
    from common.paths import published_rating_dir

    if settings.rating_model_path is not None:
        return settings.rating_model_path
    folder = published_rating_dir()
    return folder if (folder / RATING_CARD).is_file() else None


def read_card(folder: Path) -> tuple[dict[str, Any], str] | None:
    """The rating model's card in ``folder`` and its version, '<run>@<publish time>'
    (None: no card there)."""
    card = read_json(folder / RATING_CARD)
    if not card:
        return None
    run = Path(str(card.get("run", folder))).name
    return dict(card), f"{run}@{int(card.get('published_unix', 0))}"


async def newer_published(
    current: RatingModel | None, settings: Settings, graph: GraphStore
) -> RatingModel | None:
    """The published rating model, loaded and its partner fitted, if it is not ``current``
    (in-process backend, no fixed ``rating_model_path``); else None. vLLM serves the
    adapter it was started with: restart it, then the service, after a publish."""
    if settings.llm_backend != "local" or settings.rating_model_path is not None:
        return None
    folder = rating_model_folder(settings)
    found = read_card(folder) if folder is not None else None
    if found is None or (current is not None and current.version == found[1]):
        return None
    fresh = await asyncio.to_thread(open_rating_model, settings)
    if fresh is not None:
        await fresh.refit(graph)
    return fresh


def open_rating_model(settings: Settings) -> RatingModel | None:
    """The rating model to serve, or None (then /rate asks the ranking model)."""
    folder = rating_model_folder(settings)
    if folder is None:
        return None
    found = read_card(folder)
    if found is None or found[0].get("reads") != HEAD_READING or "blend_weight" not in found[0]:
        raise RatingModelError(
            f"{folder}: no rating card ({RATING_CARD}) from `r2rec model publish-rating`"
        )
    card, version = found
    if settings.llm_backend == "vllm":
        if not settings.rating_llm_model:
            if settings.rating_model_path is None:  # published, but vLLM was not told
                log.warning(
                    "a rating model is published at %s but R2REC_RATING_LLM_MODEL is unset: "
                    "/rate asks the ranking model",
                    folder,
                )
                return None
            raise RatingModelError(
                "R2REC_RATING_MODEL_PATH is set but R2REC_RATING_LLM_MODEL is not: name the "
                "model vLLM serves it as"
            )
        llm = make_backend(
            "vllm",
            base_url=settings.rating_llm_url or settings.llm_url,
            model=settings.rating_llm_model,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )
    else:
        if not (folder / "config.json").is_file():
            raise RatingModelError(f"{folder}: no model checkpoint (config.json)")
        llm = make_backend("local", model_path=str(folder))
    weight = float(card["blend_weight"])
    if not 0.0 <= weight <= 1.0:
        raise RatingModelError(f"{folder}: blend_weight {weight} is outside [0, 1]")
    return RatingModel(
        llm, version, str(card["blend_with"]), weight, dict(card.get("blend_params") or {})
    )


def watch_rating_partner(
    rating: RatingModel, graph: GraphStore, every_s: float
) -> asyncio.Task[None]:
    """Fit the partner now, then every ``every_s`` seconds (0: only now)."""

    async def loop() -> None:
        while True:
            try:
                await rating.refit(graph)
            except Exception:  # the store failing: keep the old fit, try again later
                log.exception("could not fit the rating partner; keeping the previous fit")
            if not every_s:
                return
            await asyncio.sleep(every_s)

    return asyncio.create_task(loop())
