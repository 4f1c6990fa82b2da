"""The words a catalogue uses: what people do with its items, and what an item is.

A film catalogue says "you watched" a "film"; a shop "you bought" a "product". The words
are stored with the dataset (``r2rec data import ... --verb bought --noun product``) and
used wherever text talks about interactions: the prompt, the training traces, the chain
sentences and the explanations. The MovieLens datasets keep the film words, so their
prompts are byte-identical to the ones every checkpoint so far was trained on. An import
without words gets neutral ones ("interacted with" an "item").

    vocab = Vocabulary.from_words("bought", "product")
    vocab.past, vocab.base, vocab.gerund, vocab.noun      # bought, buy, buying, product
    vocabulary_of(load_dataset("ml-100k")) == FILMS       # True

The verb's other forms come from a small table of irregular verbs, else from the regular
rule (``-ed`` off, ``-ing`` on); ``--verb-base`` overrides the base form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from common.errors import UserInputError

_IRREGULAR = {  # past -> base
    "bought": "buy",
    "read": "read",
    "heard": "hear",
    "saw": "see",
    "seen": "see",
    "wore": "wear",
    "ate": "eat",
    "drank": "drink",
    "took": "take",
    "chose": "choose",
    "made": "make",
    "got": "get",
    "sold": "sell",
    "kept": "keep",
}
_MAX_WORD = 40


@dataclass(frozen=True)
class Vocabulary:
    """A catalogue's words: the verb's past, base and -ing forms, and the item noun."""

    past: str = "watched"
    base: str = "watch"
    gerund: str = "viewing"  # as in "viewing history" (the verb's first word only)
    noun: str = "film"

    @classmethod
    def from_words(cls, verb: str, noun: str, base: str | None = None) -> Vocabulary:
        """The vocabulary of a past-tense verb and a noun, other forms derived.

        >>> Vocabulary.from_words("listened to", "song")
        Vocabulary(past='listened to', base='listen to', gerund='listening', noun='song')
        """
        verb, noun = _word(verb, "verb"), _word(noun, "noun")
        head, _, tail = verb.partition(" ")
        stem = _word(base, "verb base") if base else _base(head) + (f" {tail}" if tail else "")
        return cls(past=verb, base=stem, gerund=_gerund(stem.partition(" ")[0]), noun=noun)

    def to_meta(self) -> dict[str, str]:
        return {f"vocabulary_{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_meta(cls, meta: Mapping[str, object]) -> Vocabulary | None:
        """The vocabulary a dataset's metadata stores, or None when it stores none."""
        keys = [f"vocabulary_{k}" for k in ("past", "base", "gerund", "noun")]
        if not all(isinstance(meta.get(k), str) and meta.get(k) for k in keys):
            return None
        return cls(*(str(meta[k]) for k in keys))

    def describe(self) -> str:
        """'watched/watch/viewing/film': one string for manifests and fingerprints."""
        return f"{self.past}/{self.base}/{self.gerund}/{self.noun}"


FILMS = Vocabulary()
NEUTRAL = Vocabulary("interacted with", "interact with", "interaction", "item")


def vocabulary_of(dataset: object) -> Vocabulary:
    """The words the dataset stores (the built-in MovieLens sets store `FILMS`), else
    neutral ones."""
    stored = Vocabulary.from_meta(getattr(dataset, "meta", {}) or {})
    return NEUTRAL if stored is None else stored


def _word(text: str, what: str) -> str:
    cleaned = " ".join(str(text).split()).lower()
    if (
        not cleaned
        or len(cleaned) > _MAX_WORD
        or not all(c.isalpha() or c in " -'" for c in cleaned)
    ):
        raise UserInputError(
            f"--{what.replace(' ', '-')} must be 1-{_MAX_WORD} letters (spaces, - and ' allowed), "
            f"got {text!r}"
        )
    return cleaned


def _base(past: str) -> str:
    if past in _IRREGULAR:
        return _IRREGULAR[past]
    if past.endswith("ied"):
        return past[:-3] + "y"
    if past.endswith(
        ("ated", "ved", "ked", "sed", "zed", "ued", "ced", "ged")
    ) and not past.endswith("cked"):
        return past[:-1]  # rated -> rate, saved -> save, liked -> like
    if past.endswith("ed"):
        return past[:-2]
    return past


def _gerund(base: str) -> str:
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base.endswith("e") and not base.endswith("ee"):
        return base[:-1] + "ing"
    return base + "ing"
