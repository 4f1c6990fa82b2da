"""The rating task: RecZero / RecOne predict a user's 1-5 rating of an item by reasoning.

- `training.rating.data`: training rows from the protocol's training log (rated history,
  target item, template cold-start completion, true rating), versioned like the ranking
  data (``r2rec train data --task rating``).
- `training.rating.evaluate`: MAE/RMSE of a model on the protocol's leave-one-out
  targets beside the global/user/item-mean baselines (``r2rec eval --task rating``).
- `training.rating.recipes`: RecZero (GRPO from the base model) and RecOne (a small SFT
  cold start, then GRPO) (``r2rec train grpo --task rating --init base|sft``).

SFT and GRPO themselves are the shared `training.sft` / `training.grpo` with
``task="rating"`` (rewards `rating_format_reward` and `rating_reward`), and every run is
scored by `training.runs.run_stage`, which writes the rating metrics and baselines into
``metrics.json`` and the model card. The prompt and completion format is
`reasoning.rating`.
"""
