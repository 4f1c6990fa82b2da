"""Training data for the R2Rec ranker: prompts, traces and masked variants from the graph.

    r2rec train data --dataset ml-100k [--split valid] [--limit-users 50] [--targets-per-user 2]

What one example is (all rendering through `reasoning.prompt`, as the service renders):

1. The graph store is loaded with the protocol's training log for ``split``
   (`evaluation.protocol.training_log`: everything before each evaluated user's
   ``split`` target), so no validation/test target is ever a training target. The
   default ``split="valid"`` keeps the validation split held out for model selection.
2. Training targets: per user, the last ``targets_per_user`` interactions of that log.
   Round r (r = 1..targets_per_user) loads an embedded graph store
   (`graph_store.MemoryGraphStore`) with the log minus every user's last r interactions;
   the target is the user's r-th last interaction. The prompt's history and chains then
   come from `GraphStore.history` / `GraphStore.chains`, exactly as at serving time,
   from a graph that holds nothing of the user at or after the target.
3. Candidates: the target plus ``n_negatives`` items the user never interacted with in the
   whole dataset (so a future target is never a negative), drawn by the protocol's sampler
   with a generator seeded from (seed, round, user id), shuffled.
4. Chains: ``GraphStore.chains(user, ChainParams(max_chains=8), seed, candidates=...)``
   (the serving defaults), every chain ending at a candidate.
5. Optional teacher (`training.teacher`, ``teacher_url``): rewrites a trace's thoughts as
   prose; the rewrite replaces the template trace only if its answer still ranks the
   target first.
6. Trace and masked variants: `training.traces` (chains that reach the target become
   thoughts; the answer is the target, then the graph's co-interaction order).

Written to ``$R2REC_HOME/data/<name>/`` by `training.datasets.write_versioned`
(``examples.jsonl`` and its ``manifest.json``). Building again with the same config and
data finds the same manifest and is skipped; the content hash is deterministic. The
rows' declared shapes are `training.rows` (`RankBase` per example, `RankRow` per variant).
Nothing is held whole: each round's examples spill to a temporary file, the rounds are
merged by (user, round) (`stream_bases`), and the rows stream to the file
(`write_versioned`), so memory holds one round's graph whatever the number of users.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import json
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from common.errors import UserInputError
from common.files import stable_json
from common.paths import data_root
from evaluation.protocol import sample_negatives, training_log
from graph_store.memory import MemoryGraphStore
from graph_store.types import Chain, ChainParams, HistoryEntry, Item
from reasoning.evidence import chain_view, item_info
from reasoning.prompt import evidence_titles, render_messages
from recdata.schema import Dataset
from recdata.vocabulary import Vocabulary, vocabulary_of
from training.datasets import BuiltData, DatasetSpec, dataset_folder, write_versioned
from training.rows import RankBase, RankRow
from training.traces import build_trace, masked_variants

DATA_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TargetsConfig:
    """What every training dataset shares: which log, which targets, how much history."""

    dataset: str = field(default="ml-100k", metadata={"help": "Dataset name (r2rec data list)."})
    split: str = field(
        default="valid",
        metadata={"help": "Training data precedes this split's targets (valid keeps valid out)."},
    )
    targets_per_user: int = field(
        default=2, metadata={"help": "Training targets per user: the last N of the log."}
    )
    limit_users: int | None = field(
        default=None, metadata={"help": "Use only the first N users (sorted ids); None = all."}
    )
    history_size: int = field(default=10, metadata={"help": "History items in the prompt."})
    min_history: int = field(default=3, metadata={"help": "Skip targets with a shorter history."})

    def __post_init__(self) -> None:
        if self.split not in ("valid", "test"):
            raise UserInputError(f"split must be valid or test, got {self.split!r}")
        for name in ("targets_per_user", "history_size"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.limit_users is not None and self.limit_users < 1:
            raise UserInputError(f"limit_users must be >= 1, got {self.limit_users}")


@dataclass(frozen=True)
class DataConfig(TargetsConfig):
    """How a ranking dataset is built; every field enters the manifest and the hash."""

    seed: int = field(default=0, metadata={"help": "Seeds negatives and chain sampling."})
    n_negatives: int = field(default=19, metadata={"help": "Negatives per example."})
    max_chains: int = field(default=8, metadata={"help": "Evidence chains in the prompt."})
    max_chain_thoughts: int = field(
        default=3, metadata={"help": "At most this many chain thoughts per trace."}
    )
    masked: bool = field(
        default=True, metadata={"help": "Add the progressively masked variants (k = 1..n)."}
    )
    teacher_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible teacher URL; None = no teacher."}
    )
    teacher_model: str | None = field(default=None, metadata={"help": "Teacher model name."})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_negatives", "max_chains"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_negatives + 1 > 20:
            raise UserInputError("n_negatives + 1 must be <= 20 (letters A-T)")

    def default_name(self) -> str:
        users = f"-u{self.limit_users}" if self.limit_users else ""
        return f"{self.dataset}-{self.split}-t{self.targets_per_user}{users}-s{self.seed}"


def _round_rng(seed: int, round_: int, user_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"train\x00{round_}\x00{user_id}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _with_from_end(log: pd.DataFrame) -> pd.DataFrame:
    frame = log.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(
        drop=True
    )
    per_user = frame.groupby("user_id", sort=False)["item_id"]
    frame["from_end"] = per_user.transform("size").to_numpy() - 1 - per_user.cumcount().to_numpy()
    return frame


@dataclass(frozen=True)
class RoundCase:
    """One training target as the graph of its round shows it (what a prompt is made of)."""

    user_id: str
    round: int
    target: str
    candidate_ids: list[str]  # the target and its negatives, shuffled (letter order)
    history: list[HistoryEntry]  # oldest first
    items: dict[str, Item]  # the candidates
    chains: list[Chain]  # every chain ending at a candidate
    graph_order: list[str]  # candidates the graph scores by co-interaction, best first
    graph_score: dict[str, float]


async def round_cases(
    config: DataConfig,
    round_: int,
    log: pd.DataFrame,
    dataset: Dataset,
    users: list[str],
    seen: dict[str, set[str]],
) -> AsyncIterator[RoundCase]:
    """The cases whose target is each user's ``round_``-th last training interaction, in
    the order of ``users``, read from a graph holding nothing at or after the target."""
    graph = MemoryGraphStore.from_frames(
        log.loc[log["from_end"] >= round_, ["user_id", "item_id", "timestamp", "rating"]],
        dataset.items,
    )
    targets = log.loc[log["from_end"] == round_ - 1].set_index("user_id")["item_id"]
    catalogue = np.sort(dataset.items["item_id"].astype(str).to_numpy())
    chain_params = ChainParams(max_chains=config.max_chains)
    words = vocabulary_of(dataset)
    for user in users:
        if user not in targets.index:
            continue
        history = list(reversed(await graph.history(user, config.history_size)))
        if len(history) < config.min_history:
            continue
        rng = _round_rng(config.seed, round_, user)
        negatives = sample_negatives(rng, catalogue, seen[user], config.n_negatives)
        if negatives is None:
            continue
        target = str(targets[user])
        pool = [target, *negatives]
        candidate_ids = [pool[i] for i in rng.permutation(len(pool))]
        found = await graph.chains(user, chain_params, seed=config.seed, candidates=candidate_ids)
        scored = await graph.candidates(user, len(candidate_ids), among=candidate_ids)
        co = [c for c in scored if c.source == "co-interaction"]
        yield RoundCase(
            user_id=user,
            round=round_,
            target=target,
            candidate_ids=candidate_ids,
            history=history,
            items=await graph.items(candidate_ids),
            chains=[replace(c, words=words) for c in found],
            graph_order=[c.item.item_id for c in co],
            graph_score={c.item.item_id: float(c.score) for c in co},
        )


def base_example(config: DataConfig, case: RoundCase, words: Vocabulary) -> RankBase:
    """The base example of one case: prompt, trace, answer."""
    candidate_ids = case.candidate_ids
    hist_infos = [item_info(h.item) for h in case.history]
    cand_infos = [item_info(case.items[i]) for i in candidate_ids]
    views = [chain_view(c) for c in case.chains]
    trace = build_trace(
        cand_infos[candidate_ids.index(case.target)],
        hist_infos,
        case.chains,
        candidate_ids,
        case.graph_order,
        case.graph_score.get(case.target, 0.0),
        config.max_chain_thoughts,
    )
    return {
        "user_id": case.user_id,
        "round": case.round,
        "target": case.target,
        "candidates": candidate_ids,
        "evidence_titles": evidence_titles(hist_infos, views, cand_infos),
        "prompt": render_messages(hist_infos, views, cand_infos, words),
        "target_reached": trace.target_reached,
        "thoughts": list(trace.thoughts),
        "ranked_ids": list(trace.ranked_ids),
        "source": "graph",
    }


def collect_cases(config: DataConfig, dataset: Dataset) -> list[RoundCase]:
    """Every round's cases, held (round by round, users in id order): for builds small
    enough to keep in memory (the explainer's)."""
    log, users, seen = shard_log(config, dataset, 0, 1)

    async def collect(round_: int) -> list[RoundCase]:
        return [c async for c in round_cases(config, round_, log, dataset, users, seen)]

    return [c for r in range(1, config.targets_per_user + 1) for c in asyncio.run(collect(r))]


def expand_variants(base: RankBase, masked: bool) -> list[RankRow]:
    """The training rows of one base example: variant 0, plus k = 1..n when ``masked``.

    ``prompt`` gains an assistant message holding the given prefix for k >= 1;
    ``completion`` is one assistant message with the text to learn.
    """
    from training.traces import Trace

    trace = Trace(tuple(base["thoughts"]), tuple(base["ranked_ids"]), base["target_reached"])
    rows: list[RankRow] = []
    for variant in masked_variants(trace, base["candidates"]):
        if variant.k and not masked:
            break
        prompt = list(base["prompt"])
        if variant.prefix:
            prompt.append({"role": "assistant", "content": variant.prefix})
        rows.append(
            {
                **base,
                "id": f"{base['source']}-u{base['user_id']}-r{base['round']}-k{variant.k}",
                "variant": variant.k,
                "prompt": prompt,
                "completion": [{"role": "assistant", "content": variant.completion}],
            }
        )
    return rows


Rewriter = Callable[[list[RankBase]], list[RankBase]]


def shard_log(
    config: DataConfig, dataset: Dataset, shard: int, shards: int
) -> tuple[pd.DataFrame, list[str], dict[str, set[str]]]:
    """The training log, the shard's users (sorted ids) and what each has seen."""
    if not 0 <= shard < shards:
        raise UserInputError(f"shard must be in [0, {shards}), got {shard}")
    log = _with_from_end(training_log(dataset, config.split))  # type: ignore[arg-type]
    users = sorted(log["user_id"].astype(str).unique())
    if config.limit_users is not None:
        users = users[: config.limit_users]
    users = users[shard::shards]
    chosen = set(users)
    seen = {
        str(u): set(g.astype(str))
        for u, g in dataset.interactions.groupby("user_id")["item_id"]
        if str(u) in chosen
    }
    return log, users, seen


def shard_bases(
    config: DataConfig, dataset: Dataset, shard: int = 0, shards: int = 1
) -> list[RankBase]:
    """The base examples of every ``shards``-th user from the ``shard``-th (users in
    sorted id order, after ``limit_users``): the unit of work a distributed build hands
    to one worker (`training.distributed`); the shards' union is the whole build."""
    log, users, seen = shard_log(config, dataset, shard, shards)

    words = vocabulary_of(dataset)

    async def collect(round_: int) -> list[RankBase]:
        cases = round_cases(config, round_, log, dataset, users, seen)
        return [base_example(config, c, words) async for c in cases]

    return [b for r in range(1, config.targets_per_user + 1) for b in asyncio.run(collect(r))]


def stream_bases(
    config: DataConfig, dataset: Dataset, spill_dir: Path | None = None
) -> Iterator[RankBase]:
    """`shard_bases` of the whole build, sorted by (user, round), without holding them:
    each round's examples (made user by user, in id order) spill to a temporary file as
    they are made, and the rounds' files are merged. Memory holds one round's graph and
    one example per round. The spill files (about 5 KB per example) go under
    ``spill_dir`` (default: the system's temporary folder) and are removed at the end."""
    log, users, seen = shard_log(config, dataset, 0, 1)

    words = vocabulary_of(dataset)

    async def spill(round_: int, path: Path) -> None:
        with path.open("w", encoding="utf-8") as out:
            async for case in round_cases(config, round_, log, dataset, users, seen):
                out.write(stable_json(base_example(config, case, words)) + "\n")

    with tempfile.TemporaryDirectory(prefix=".r2rec-bases-", dir=spill_dir) as folder:
        paths = [Path(folder) / f"round-{r}.jsonl" for r in range(1, config.targets_per_user + 1)]
        for round_, path in enumerate(paths, start=1):
            asyncio.run(spill(round_, path))
        with contextlib.ExitStack() as files:
            opened = [files.enter_context(path.open(encoding="utf-8")) for path in paths]
            rounds = [(cast(RankBase, json.loads(line)) for line in lines) for lines in opened]
            yield from heapq.merge(*rounds, key=lambda b: (b["user_id"], b["round"]))


def build_examples(
    config: DataConfig,
    dataset: Dataset,
    rewrite: Rewriter | None = None,
    bases: list[RankBase] | None = None,
    spill_dir: Path | None = None,
) -> Iterator[RankRow]:
    """Every training row (base examples, optional teacher rewrites, masked variants),
    one at a time, sorted by (user, round): streamed from `stream_bases`, or from
    ``bases`` already built (by shards). A teacher rewrites the base examples as one
    batch, so with a teacher they are held. ``spill_dir``: where `stream_bases` spills
    (`build_dataset` uses the data root, beside the datasets)."""
    if rewrite is None and config.teacher_url:
        from training.teacher import TeacherConfig, make_teacher_rewriter

        rewrite = make_teacher_rewriter(TeacherConfig(config.teacher_url, config.teacher_model))
    ordered: Iterable[RankBase]
    if bases is None and rewrite is None:
        ordered = stream_bases(config, dataset, spill_dir)
    else:
        held = shard_bases(config, dataset) if bases is None else list(bases)
        held.sort(key=lambda b: (b["user_id"], b["round"]))
        ordered = rewrite(held) if rewrite is not None else held
    for base in ordered:
        yield from expand_variants(base, config.masked)


@dataclass
class RankCounts:
    """Rows, base examples (variant 0), their users, how many reach the target, teacher
    rewrites, and rows per variant."""

    rows: int = 0
    examples: int = 0
    users: set[str] = field(default_factory=set)
    target_reached: int = 0
    teacher_rewrites: int = 0
    by_variant: Counter[int] = field(default_factory=Counter)

    def add(self, row: RankRow) -> None:
        self.rows += 1
        self.by_variant[row["variant"]] += 1
        if row["variant"] == 0:
            self.examples += 1
            self.users.add(row["user_id"])
            self.target_reached += bool(row["target_reached"])
            self.teacher_rewrites += row["source"] == "teacher"

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "examples": self.examples,
            "users": len(self.users),
            "target_reached": self.target_reached,
            "teacher_rewrites": self.teacher_rewrites,
            "by_variant": {str(k): self.by_variant[k] for k in sorted(self.by_variant)},
        }


def build_dataset(
    config: DataConfig,
    dataset: Dataset,
    name: str | None = None,
    rewrite: Rewriter | None = None,
    force: bool = False,
    bases: Callable[[], list[RankBase]] | None = None,
) -> BuiltData:
    """Build and write the ranking dataset; skip an identical one (`write_versioned`).
    ``bases`` builds the base examples elsewhere (`training.distributed`); the rows and
    the file are the same either way."""
    words = vocabulary_of(dataset).describe()  # the prompt's words identify the data too
    config_dict = {**asdict(config), "vocabulary": words}
    spec = DatasetSpec("rank", DATA_FORMAT_VERSION, config_dict, config.seed, RankCounts)
    return write_versioned(
        dataset_folder(name or config.default_name()),
        spec,
        dataset,
        lambda: build_examples(config, dataset, rewrite, bases() if bases else None, data_root()),
        force,
    )
