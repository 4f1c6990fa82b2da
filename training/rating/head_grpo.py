"""GRPO on the rating token: the seed's rewards, a group of sampled ratings per target.

The rating head's completion is the grounded analysis (fixed text from the prompt's
facts) followed by the one token the model writes after ``<rate>``. GRPO here samples
``group_size`` next tokens per target from the model's full next-token distribution
(any token, so a malformed answer is possible and costs reward), closes each as
``<rate>{token}</rate>``, and scores it with the seed's rewards
(`reasoning.rewards.rating_format_reward` and `rating_reward`, weighted). A token's
advantage is its reward minus its group's mean, over the group's standard deviation;
the loss is ``-mean(advantage x log p(token))`` (no KL term, one forward pass per target,
nothing generated beyond the token, so every group costs what one SFT example costs).

Because ``rating_reward`` falls with |sampled - true|, the policy's optimum puts its mass
on the conditional median of the rating: the point MAE rewards.

    logits = reader.next_logits(model, texts)   # (targets, vocabulary)
    loss, stats = grpo_loss(logits, reader.tokenizer, examples, 8, (0.25, 1.0), generator)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reasoning.rewards import rating_format_reward, rating_reward

RATE_CLOSE = "</rate>"


def group_advantages(rewards: np.ndarray) -> np.ndarray:
    """(groups, size) rewards -> (reward - group mean) / (group std + 1e-4), population std;
    a group whose rewards are all equal has zero advantage (nothing to learn from it).

    >>> group_advantages(np.array([[1.0, 0.0], [0.5, 0.5]])).round(3).tolist()
    [[1.0, -1.0], [0.0, 0.0]]
    """
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    return np.asarray(centred / (rewards.std(axis=1, keepdims=True) + 1e-4))


def sampled_rewards(
    prefixes: Sequence[str],
    tokens: Sequence[Sequence[str]],
    ratings: Sequence[float],
    weights: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """(groups, size) total rewards and format rewards of ``prefix + token + "</rate>"``.

    >>> steps = "<analyse_user>.</analyse_user><analyse_item>.</analyse_item><match>.</match>"
    >>> total, fmt = sampled_rewards([steps + "<rate>"], [["4", "x"]], [5.0], (0.25, 1.0))
    >>> total.tolist(), fmt.tolist()  # 0.25 x format + (1 - |4 - 5| / 4); no rating: 0
    ([[1.0, 0.0]], [[1.0, 0.0]])
    """
    flat = [p + t + RATE_CLOSE for p, row in zip(prefixes, tokens, strict=True) for t in row]
    truth = [float(r) for r, row in zip(ratings, tokens, strict=True) for _ in row]
    fmt = np.array(rating_format_reward(flat)).reshape(len(prefixes), -1)
    close = np.array(rating_reward(flat, rating=truth)).reshape(len(prefixes), -1)
    return weights[0] * fmt + weights[1] * close, fmt


def grpo_loss(
    logits: Any,
    tokenizer: Any,
    examples: Sequence[Any],
    group_size: int,
    weights: tuple[float, float],
    generator: Any,
) -> tuple[Any, dict[str, float]]:
    """The GRPO loss of one batch and its signal: mean reward, the share of groups whose
    rewards differed, the share of samples in the valid format.

    ``logits``: (targets, vocabulary) next-token logits after each example's ``<rate>``;
    ``examples``: objects with ``rating`` and ``messages`` (the last one the completion
    prefix).
    """
    import torch

    logp = torch.log_softmax(logits.double(), dim=1)
    samples = torch.multinomial(logp.detach().exp(), group_size, True, generator=generator)
    tokens = [[tokenizer.decode([int(t)]) for t in row] for row in samples]
    prefixes = [e.messages[-1]["content"] for e in examples]
    rewards, fmt = sampled_rewards(prefixes, tokens, [e.rating for e in examples], weights)
    advantages = torch.from_numpy(group_advantages(rewards))
    loss = -(advantages * logp.gather(1, samples)).mean()
    return loss, {
        "reward": float(rewards.mean()),
        "groups_with_signal": float((rewards.std(axis=1) > 0).mean()),
        "valid_format": float((fmt == 1.0).mean()),
    }
