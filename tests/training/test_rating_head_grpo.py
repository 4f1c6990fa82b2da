"""GRPO on the rating token: group advantages, the seed's rewards on sampled tokens, and a
loss whose gradient moves probability toward the true rating."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from training.rating.head_grpo import group_advantages, grpo_loss, sampled_rewards

STEPS = "<analyse_user>u</analyse_user><analyse_item>i</analyse_item><match>m</match><rate>"


def test_group_advantages_centre_and_scale_each_group() -> None:
    adv = group_advantages(np.array([[1.0, 0.0, 0.5], [0.3, 0.3, 0.3]]))
    assert np.allclose(adv.mean(axis=1), 0) and np.allclose(adv[1], 0)
    assert adv[0, 0] > adv[0, 2] > adv[0, 1]
    assert abs(adv[0].std() - 1) < 1e-3


def test_sampled_rewards_follow_the_seed_rewards() -> None:
    total, fmt = sampled_rewards(
        [STEPS, STEPS], [["5", "1", "?"], ["3", "3", "4"]], [5.0, 3.0], (0.25, 1.0)
    )
    assert fmt.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert total.tolist() == [[1.25, 0.25, 0.0], [1.25, 1.25, 1.0]]


def test_the_gradient_moves_mass_toward_the_true_rating(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = {c: tokenizer.encode(c, add_special_tokens=False)[0] for c in ("2", "5")}
    logits = torch.full((1, len(tokenizer)), -30.0)
    logits[0, ids["2"]] = logits[0, ids["5"]] = 0.0  # even odds between 2 and 5
    logits.requires_grad_(True)
    example = SimpleNamespace(rating=5.0, messages=[{"role": "assistant", "content": STEPS}])
    generator = torch.Generator().manual_seed(0)
    loss, stats = grpo_loss(logits, tokenizer, [example], 16, (0.25, 1.0), generator)
    loss.backward()
    assert logits.grad is not None
    assert logits.grad[0, ids["5"]] < 0 < logits.grad[0, ids["2"]]  # descent raises "5"
    assert stats["groups_with_signal"] == 1.0 and stats["valid_format"] == 1.0
