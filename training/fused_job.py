"""The fused ranker inside `r2rec retrain`: features, head, bundle, publish, in one job.

    r2rec retrain --dataset ml-latest-small --rank-recipe fused

The retrain job's stages, for ``rank_recipe=fused`` (each resumable as ever: a finished
stage is skipped when the job runs again, the LLM states are cached per row set):

- ``export``: the snapshot of what the graph store serves, as for every recipe;
- ``data``: out-of-sample collaborative features of the ``valid``, ``test`` and training
  row sets (`baselines.features`, models fitted per row set; configs from
  ``feature_results``, the baselines table, when given) into ``runs/<job>/features``;
- ``sft``: the hidden-state head (`training.hidden_head`): the frozen LLM's states per
  row set and its reading of every catalogue item (the content columns,
  `reasoning.item_content`, with the config's ``item_layers``), each variant's base and
  head fitted on the training row sets, chosen on valid, test scored once, into
  ``runs/<job>-hidden``; its keys come from ``sft_config`` (default: `RECIPE`,
  ``training/configs/hidden-head-smollm2.yaml``) and ``sft_overrides`` (`HiddenHeadConfig`
  fields, e.g. ``layers=[10]``); the job sets `OWNED` itself;
- ``grpo``: the head is fitted in closed form, so this stage trains the explainer that
  writes explain=true's thoughts about the fused ranking (`training.explainer`: LoRA with
  the language loss on short evidence thoughts, progressively masked) from the snapshot,
  into ``runs/<job>-explainer``; its keys come from ``grpo_config`` (default:
  `EXPLAINER_RECIPE`) and ``grpo_overrides`` (`ExplainerConfig` fields); ``grpo=false``
  skips it;
- ``evaluate``: the run's test rows (SASRec, the combiner, base, fused, p values);
- ``publish``: the collaborative models fitted on the whole snapshot
  (``runs/<job>/bundle``), joined with the base weights and head of the run's variant
  with the lowest fused valid cross-entropy (and its ``items.npz``) and published for
  the service if the head lowers its base's valid cross-entropy
  (`training.fused_publish`), with the explainer beside them when one was trained and
  its held-out cases were served at least once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.errors import UserInputError
from common.files import read_json
from common.paths import runs_root
from recdata.schema import Dataset
from training.config import load_config
from training.explainer import ExplainerConfig
from training.hidden_head import HiddenHeadConfig

if TYPE_CHECKING:
    from training.retrain import RetrainConfig

OWNED = ("dataset", "features_dir", "out_dir", "sasrec_results")  # the job sets these
RECIPE = Path(__file__).parent / "configs" / "hidden-head-smollm2.yaml"  # sft_config default
EXPLAINER_RECIPE = Path(__file__).parent / "configs" / "explainer-smollm2.yaml"  # grpo_config
ROWSETS = ("valid", "test")  # besides the head's training row sets


def check_overrides(overrides: dict[str, Any], what: str = "hidden-head") -> None:
    owned = sorted(set(overrides) & set(OWNED))
    if owned:
        raise UserInputError(f"{what} settings {owned} are set by the job")


def limited(dataset: Dataset, limit_users: int | None) -> Dataset:
    """The first ``limit_users`` users (in id order) and all their interactions."""
    if limit_users is None:
        return dataset
    users = sorted(dataset.interactions["user_id"].astype(str).unique())[:limit_users]
    inter = dataset.interactions[dataset.interactions["user_id"].astype(str).isin(users)]
    return Dataset.from_frames(dataset.name, inter, dataset.items)


class FusedStages:
    """The retrain job's stages for the fused ranker (``snapshot``: the export's dataset,
    known once the export stage has run)."""

    def __init__(self, job: RetrainConfig, folder: Path, snapshot: Callable[[], Dataset]) -> None:
        self.job, self.folder, self.snapshot = job, folder, snapshot

    def head_config(self) -> HiddenHeadConfig:
        check_overrides(self.job.sft_overrides)
        from reasoning.backends.model_folders import default_base_dir

        return load_config(
            HiddenHeadConfig,
            self.job.sft_config or RECIPE,
            {
                "model_path": str(default_base_dir()),
                **self.job.sft_overrides,
                "dataset": self.job.dataset,  # titles; the snapshot adds interactions only
                "features_dir": str(self.folder / "features"),
                "out_dir": str(runs_root() / f"{self.job.job}-hidden"),
                "sasrec_results": str(self.job.feature_results or ""),
            },
        )

    def require_base(self) -> Path:
        """The base model the head reads, prepared on first use (`require_model`); checked
        before the first stage, so a missing model fails the job before the features."""
        from reasoning.backends.model_folders import require_model

        return require_model(Path(self.head_config().model_path))

    def explainer_config(self) -> ExplainerConfig | None:
        """The explainer's settings; None with ``grpo=false``."""
        if not self.job.grpo:
            return None
        check_overrides(self.job.grpo_overrides, "explainer")
        return load_config(
            ExplainerConfig,
            self.job.grpo_config or EXPLAINER_RECIPE,
            {
                **self.job.grpo_overrides,
                "dataset": self.job.dataset,
                "out_dir": str(runs_root() / f"{self.job.job}-explainer"),
            },
        )

    def settings(self) -> dict[str, Any]:
        return {"sft": self.head_config(), "grpo": self.explainer_config()}

    def _overrides(self) -> dict[str, dict[str, Any]]:
        from baselines.features import tuned_overrides

        path = self.job.feature_results
        return tuned_overrides(path) if path is not None else {}

    def features(self) -> dict[str, Any]:
        """Each row set's feature file (skipped when already written)."""
        from baselines.features import FeatureSet, compute_features, feature_path

        data = limited(self.snapshot(), self.job.limit_users)
        out = self.folder / "features"
        out.mkdir(parents=True, exist_ok=True)
        seconds = {}
        overrides = self._overrides()
        for rowset in (*ROWSETS, *self.head_config().train_rowsets):
            path = feature_path(out, rowset)
            if not path.is_file():
                compute_features(data, rowset, overrides).save(path)
            seconds[rowset] = FeatureSet.load(path).seconds
        return {"folder": str(out), "fit_seconds": seconds}

    def head(self) -> dict[str, Any]:
        from training.hidden_head import run_hidden_head

        config = self.head_config()
        summary = run_hidden_head(config, limited(self.snapshot(), self.job.limit_users))
        return {"run": config.out_dir, "train_rows": summary["train_rows"]}

    def explainer(self) -> dict[str, Any]:
        from training.explainer import train_explainer

        config = self.explainer_config()
        if config is None:
            return {"skipped": True, "reason": "grpo=false: no explainer"}
        data = limited(self.snapshot(), self.job.limit_users)
        return {"run": config.out_dir, **train_explainer(config, data)}

    def evaluate(self) -> dict[str, Any]:
        run = self.head_config().out_dir
        summary = read_json(Path(run) / "summary.json")
        if not summary:
            raise UserInputError(f"{run} holds no hidden-head summary")
        return {"run": run, "rows": summary["rows"]}

    def publish(self) -> dict[str, Any]:
        from baselines.bundle import fit_bundle
        from training.fused_publish import publish_fused

        data = limited(self.snapshot(), self.job.limit_users)
        bundle_dir = self.folder / "bundle"
        if not (bundle_dir / "manifest.json").is_file():
            meta = {"dataset": self.job.dataset, "fit_log": data.name}
            weights = np.zeros(5)  # the run's base weights replace them when published
            bundle = fit_bundle(data.interactions, data.items, self._overrides(), weights, meta)
            bundle.save(bundle_dir)
        run = Path(self.head_config().out_dir)
        decision = publish_fused(
            run, bundle_dir, force=self.job.publish_force, data=data, stage_seconds=self.timed()
        )
        explainer = self.explainer_config()
        if decision["published"] and explainer is not None:
            decision["explainer"] = self._publish_explainer(Path(explainer.out_dir))
        return decision

    def timed(self) -> dict[str, float]:
        """The job's finished stages and their wall times, in seconds, in stage order."""
        from training.retrain import STAGES, stage_done

        records = {stage: stage_done(self.job.job, stage) for stage in STAGES}
        return {stage: float(r["seconds"]) for stage, r in records.items() if r}

    @staticmethod
    def _publish_explainer(run: Path) -> str:
        """Publish the explainer beside the ranker unless its held-out cases say it would
        never be served (served share 0: the evidence would write every thought anyway)."""
        from training.fused_publish import publish_explainer

        valid = (read_json(run / "explainer.json") or {}).get("valid")
        if valid is not None and not valid["served"] > 0:
            return f"not published: served on 0 of {valid['cases']} held-out cases"
        return f"published to {publish_explainer(run)}"

    def work(self, export: Callable[[], dict[str, Any]]) -> dict[str, Callable[[], dict[str, Any]]]:
        return {
            "export": export,
            "data": self.features,
            "sft": self.head,
            "grpo": self.explainer,
            "evaluate": self.evaluate,
            "publish": self.publish,
        }
