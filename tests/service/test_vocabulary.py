"""A shop catalogue imported with its words is explained in them, not in film words."""

from __future__ import annotations

from pathlib import Path

from common.paths import datasets_dir
from recdata.importer import import_dataset
from recdata.vocabulary import Vocabulary
from tests.recdata.test_vocabulary import _shop


def test_the_service_explains_a_shop_in_its_words(make_client, tmp_path: Path) -> None:
    inter, items = _shop(tmp_path)
    words = Vocabulary.from_words("bought", "product")
    import_dataset(inter, items, "shop", datasets_dir(), vocabulary=words)
    client = make_client(dataset="shop")
    body = client.post("/recommend", json={"user_id": "a", "k": 2, "explain": False}).json()
    sentences = [c["sentence"] for c in body["evidence"]]
    assert sentences and all(s.startswith("you bought") for s in sentences), body
    assert "watch" not in str(body)
