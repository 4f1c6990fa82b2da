"""RecZero and RecOne: the two rating-task recipes behind ``r2rec train grpo --task rating``.

    r2rec train data --task rating --dataset ml-100k
    r2rec train grpo --task rating --init base --name reczero          # RecZero
    r2rec train grpo --task rating --init sft --name recone             # RecOne
    r2rec train grpo --task rating --init sft --coldstart-steps 30 --coldstart-set lora_r=8

- ``init="base"`` (RecZero): GRPO straight from the base model (``base_model`` or the
  prepared SmolLM2), no supervised data: the rewards alone teach the format and the rating.
- ``init="sft"`` (RecOne): a small SFT cold start on the same rating data into run
  ``<name>-coldstart`` (``coldstart_steps`` steps; its other settings are the GRPO
  config's shared ones, SFT's default learning rate, then ``coldstart_overrides``), then
  GRPO from its merged model (``init_run``). Both runs are complete run folders with their
  own rating metrics, so the cold start alone is scored too. A finished cold start is
  skipped when the recipe runs again (a finished run always is, see `training.stages`).
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from common.errors import UserInputError
from training.config import GRPOConfig, RunConfig, SFTConfig, load_config

INITS = ("base", "sft")


def coldstart_config(config: GRPOConfig, steps: int, overrides: dict[str, Any]) -> SFTConfig:
    """The RecOne cold start: the GRPO config's shared fields, SFT's learning rate and
    ``steps`` optimiser steps, then ``overrides`` (strings as on the command line)."""
    if steps < 1:
        raise UserInputError(f"coldstart steps must be >= 1, got {steps}")
    shared = {f.name for f in fields(RunConfig)} - {"learning_rate", "max_steps", "init_run"}
    values: dict[str, Any] = {k: getattr(config, k) for k in shared}
    values.update(name=f"{config.name}-coldstart", max_steps=steps)
    return load_config(SFTConfig, None, {**values, **overrides})


def recipe_configs(
    config: GRPOConfig,
    init: str,
    coldstart_steps: int = 30,
    coldstart_overrides: dict[str, Any] | None = None,
) -> tuple[SFTConfig | None, GRPOConfig]:
    """(cold-start SFT config or None, GRPO config) of ``--init INIT`` for the config's
    task (`Task.recipe_configs`: the rating task's are `rating_recipe_configs`; the
    ranking task has none and refuses)."""
    from training.tasks import get_task

    return get_task(config.task).recipe_configs(config, init, coldstart_steps, coldstart_overrides)


def rating_recipe_configs(
    config: GRPOConfig,
    init: str,
    coldstart_steps: int = 30,
    coldstart_overrides: dict[str, Any] | None = None,
) -> tuple[SFTConfig | None, GRPOConfig]:
    """(cold-start SFT config or None, GRPO config) of a rating recipe."""
    if init not in INITS:
        raise UserInputError(f"--init must be one of {', '.join(INITS)}, got {init!r}")
    if config.init_run:
        raise UserInputError(
            f"--init {init} decides where GRPO starts: leave init_run unset "
            f"(got {config.init_run!r})"
        )
    if init == "base":
        return None, config
    sft = coldstart_config(config, coldstart_steps, coldstart_overrides or {})
    return sft, replace(config, init_run=sft.name)


def run_recipe(
    config: GRPOConfig,
    init: str,
    coldstart_steps: int = 30,
    coldstart_overrides: dict[str, Any] | None = None,
) -> Path:
    """Run RecZero (``init="base"``) or RecOne (``init="sft"``); returns the GRPO run folder."""
    from training.grpo import run_grpo
    from training.sft import run_sft

    sft, grpo = recipe_configs(config, init, coldstart_steps, coldstart_overrides)
    if sft is not None:
        run_sft(sft)
    return run_grpo(grpo)
