"""The rating task's training side: RecZero / RecOne predict a user's 1-5 rating.

    r2rec train data --task rating --dataset ml-100k
    r2rec train grpo --task rating --init base|sft --name N

- `training.rating.data`: training rows from the protocol's training log (rated history,
  target item, template cold-start completion, true rating), versioned like the ranking
  data (``r2rec train data --task rating``).
- `training.rating.recipes`: RecZero (GRPO from the base model) and RecOne (a small SFT
  cold start, then GRPO) (``r2rec train grpo --task rating --init base|sft``).

The task object tying them to the shared machinery is `training.tasks.rating.RatingTask`:
SFT and GRPO are the shared `training.sft` / `training.grpo` with ``task="rating"``
(rewards `rating_format_reward` and `rating_reward`), and every run is scored by
`training.stages.run_stage`, which writes the rating metrics and baselines into
``metrics.json`` and the model card. Inference is `reasoning.rater`, the evaluator
(MAE/RMSE beside the mean baselines, ``r2rec eval --task rating``) is
`evaluation.rating`, and the prompt and completion format is `reasoning.rating`.
"""
