"""Training the R2Rec models: data, SFT, GRPO, evaluation of each run, publishing.

    r2rec train data [--task rank|rating] ...   # training rows -> $R2REC_HOME/data/<name>
    r2rec train sft | grpo ...                  # one run -> $R2REC_HOME/runs/<name>
    r2rec model publish RUN; r2rec retrain ...; r2rec bench train

Modules:
- `training.tasks`: the tasks by name (``rank``, ``rating``): data builder, GRPO rewards,
  evaluation and model-card section of each (`Task`);
- `training.config`: run configs (`SFTConfig`, `GRPOConfig`) from YAML and overrides;
- `training.rows`: the declared shape of training rows (`RankRow`, `RatingRow`);
- `training.data` (+ `training.traces`, `training.teacher`): ranking rows and the shared
  versioned dataset files; `training.rating`: the rating rows and RecZero / RecOne recipes;
- `training.sft`, `training.grpo`: the two trainers; `training.stages`: one stage end to
  end; `training.run_folder`: what a run writes; `training.device`: cpu or cuda;
- `training.publish`, `training.retrain`, `training.bench`: promotion, the batch job,
  throughput.

See docs/training.md.
"""
