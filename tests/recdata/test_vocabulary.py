"""recdata.vocabulary: a catalogue's words, stored with the dataset, used by the prompt,
the chain sentences, the training traces and the service's explanations."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from common.errors import UserInputError
from graph_store.memory import MemoryGraphStore
from reasoning.evidence import chain_view, item_info
from reasoning.prompt import SYSTEM_PROMPT, render_messages, system_prompt
from recdata import load_dataset
from recdata.store import dataset_vocabulary
from recdata.vocabulary import FILMS, NEUTRAL, Vocabulary, vocabulary_of
from training.traces import chain_thought


def test_verb_forms_are_derived_and_can_be_overridden() -> None:
    assert Vocabulary.from_words("bought", "product") == Vocabulary(
        "bought", "buy", "buying", "product"
    )
    assert Vocabulary.from_words("Rated", "Book").base == "rate"
    assert Vocabulary.from_words("clicked", "article").base == "click"
    assert Vocabulary.from_words("listened to", "song").base == "listen to"
    assert Vocabulary.from_words("wrought", "thing", base="work").base == "work"
    with pytest.raises(UserInputError, match="--noun"):
        Vocabulary.from_words("bought", "<b>product</b>")


def test_movielens_keeps_the_film_words_and_the_exact_prompt() -> None:
    assert vocabulary_of(load_dataset("ml-100k")) == FILMS == dataset_vocabulary("ml-latest-small")
    assert system_prompt(FILMS) == SYSTEM_PROMPT
    assert "viewing history" in SYSTEM_PROMPT and "went on to watch" in SYSTEM_PROMPT


def _shop(folder: Path) -> tuple[Path, Path]:
    inter = pd.DataFrame(
        [
            (u, i, t)
            for t, (u, i) in enumerate(
                [("a", "p1"), ("a", "p2"), ("a", "p3"), ("b", "p1"), ("b", "p2"), ("b", "p4")]
            )
        ],
        columns=["user_id", "item_id", "timestamp"],
    )
    items = pd.DataFrame(
        {"item_id": ["p1", "p2", "p3", "p4"], "title": ["Kettle", "Mug", "Tea", "Spoon"]}
    )
    inter.to_csv(folder / "inter.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    return folder / "inter.csv", folder / "items.csv"


def _import(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "r2rec", "data", "import", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.asyncio
async def test_an_imported_shop_speaks_of_buying_products(tmp_path: Path) -> None:
    inter, items = _shop(tmp_path)
    done = _import(
        [str(inter), str(items), "--name", "shop", "--verb", "bought", "--noun", "product"]
    )
    assert done.returncode == 0, done.stderr
    shop = load_dataset("shop")
    words = vocabulary_of(shop)
    assert words == Vocabulary("bought", "buy", "buying", "product") == dataset_vocabulary("shop")

    store = MemoryGraphStore.from_dataset(shop)
    chains = [replace(c, words=words) for c in await store.chains("a", candidates=["p4"])]
    assert chains, "b shares p1 and p2 with a, then went on to p4"
    sentence = chains[0].sentence()
    assert sentence.startswith("you bought") and "went on to buy Spoon" in sentence
    thought = chain_thought(chains[0], ["p4"])
    assert thought.startswith("You bought") and "watch" not in thought
    history = [item_info(h.item) for h in await store.history("a")]
    messages = render_messages(
        history,
        [chain_view(c) for c in chains],
        [item_info((await store.items(["p4"]))["p4"])],
        words,
    )
    text = messages[0]["content"] + messages[1]["content"]
    assert "buying history" in text and "went on to buy" in text and "watch" not in text


def test_an_import_without_words_is_neutral_and_bad_flags_are_refused(tmp_path: Path) -> None:
    inter, items = _shop(tmp_path)
    assert _import([str(inter), str(items), "--name", "plain"]).returncode == 0
    assert vocabulary_of(load_dataset("plain")) == NEUTRAL
    assert "watch" not in system_prompt(NEUTRAL)
    half = _import([str(inter), str(items), "--name", "half", "--verb", "bought"])
    assert half.returncode == 2 and "--verb and --noun go together" in half.stderr
