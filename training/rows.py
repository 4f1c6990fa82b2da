"""The declared shape of training rows: what examples.jsonl holds and what TRL is given.

    from training.rows import RankRow, RatingRow, TrainingRow

One JSON object per line of ``$R2REC_HOME/data/<name>/examples.jsonl`` (keys sorted on
disk). `training.data` builds `RankBase` examples (one per ranking target) and expands
each into `RankRow`s (variant 0 = the full trace, k >= 1 = masked variants);
`training.rating.data` builds `RatingRow`s. `training.datasets.read_examples` reads either
back as a `TrainingRow`; SFT reads ``prompt`` and ``completion`` of both, GRPO the
columns its task's rewards need (`training.tasks`). These are type declarations only:
nothing is checked at run time, and the on-disk format is unchanged.
"""

from __future__ import annotations

from typing import TypedDict

Messages = list[dict[str, str]]  # OpenAI chat messages: {"role": ..., "content": ...}


class RankBase(TypedDict):
    """One ranking example before its variants (what the teacher rewrites)."""

    user_id: str
    round: int  # r: the target is the user's r-th last training interaction
    target: str  # the true item id
    candidates: list[str]  # item ids in letter order (A, B, ...)
    evidence_titles: list[str]  # every title the prompt shows (grounding_reward)
    prompt: Messages
    target_reached: bool  # some evidence chain ends at the target
    thoughts: list[str]
    ranked_ids: list[str]  # the answer: the target, then the graph's order
    source: str  # "graph" or "teacher"


class RankRow(RankBase):
    """One ranking training row: a base example's variant k."""

    id: str
    variant: int  # k thoughts given in the prompt's assistant message (0 = none)
    completion: Messages  # one assistant message: the text to learn


class RatingRow(TypedDict):
    """One rating training row (RecZero / RecOne)."""

    id: str
    user_id: str
    item_id: str
    round: int
    timestamp: int
    history: list[str]  # item ids, oldest first
    prompt: Messages
    completion: Messages  # the template cold-start completion (SFT only)
    rating: float  # the true rating (rating_reward's column)
    variant: int  # always 0
    source: str  # "template"


TrainingRow = RankRow | RatingRow
