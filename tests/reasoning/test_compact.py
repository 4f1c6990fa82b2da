"""reasoning.compact: the states after a layer, read without running the layers above it."""

from __future__ import annotations

from pathlib import Path

import torch

from reasoning.compact import states_by_layer


def test_states_by_layer_equal_a_full_pass_and_skip_the_layers_above(
    tiny_model_dir: Path,
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = dict(
        tokenizer(["(A) Heat (1995, Action)", "(B) Fargo"], padding=True, return_tensors="pt")
    )
    with torch.inference_mode():
        full = model(**batch, output_hidden_states=True).hidden_states
        above = []
        handle = model.model.layers[1].register_forward_hook(lambda *a: above.append(1))
        early = states_by_layer(model, batch, (1,))
        handle.remove()
        assert not above  # layer 2 never ran
        assert torch.equal(early[1], full[1])
        both = states_by_layer(model, batch, (1, 2))  # the last layer: a full pass
        assert torch.equal(both[1], full[1]) and torch.equal(both[2], full[2])
