"""One id rule end to end: an id the importer accepts is one every endpoint accepts.

The rule (`common.ids`): 1-256 characters, no control characters, no lone surrogates.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from common.paths import datasets_dir
from recdata.importer import import_dataset


def _shop(folder: Path) -> None:
    """A small catalogue whose ids carry spaces, accents and punctuation."""
    folder.mkdir(parents=True, exist_ok=True)
    users = ["ana 1", "bo", "cé", "dan!", "eve"]
    items = ["café 1", "thé vert", "pain/2", "jus?", "eau", "sel"]
    rows = [
        f"{u},{items[(n + k) % len(items)]},{1_700_000_000 + 60 * (5 * n + k)}"
        for n, u in enumerate(users)
        for k in range(5)
    ]
    (folder / "inter.csv").write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    titles = "\n".join(f"{i},Title {n}" for n, i in enumerate(items))
    (folder / "items.csv").write_text("item_id,title\n" + titles + "\n")


def test_an_imported_id_with_a_space_and_an_accent_works_in_every_endpoint(
    tmp_path: Path, make_client
) -> None:
    _shop(tmp_path)
    import_dataset(tmp_path / "inter.csv", tmp_path / "items.csv", "shop", datasets_dir())
    client = make_client(dataset="shop")

    item = client.get(f"/items/{quote('café 1')}")
    assert item.status_code == 200 and item.json()["item_id"] == "café 1"
    history = client.get(f"/users/{quote('ana 1')}/history")
    assert history.status_code == 200
    assert "café 1" in [e["item"]["item_id"] for e in history.json()["entries"]]
    body = client.post("/recommend", json={"user_id": "ana 1", "k": 1, "explain": False})
    assert body.status_code == 200 and len(body.json()["items"]) == 1
    posted = client.post(
        "/interactions",
        json={"interactions": [{"user_id": "ana 1", "item_id": "thé vert", "timestamp": 1}]},
    )
    assert posted.status_code == 200


def test_ids_the_rule_refuses_are_422_saying_why(make_client) -> None:
    client = make_client()
    for bad, why in [("a\tb", "control character"), ("x" * 257, "at most 256")]:
        reply = client.post("/recommend", json={"user_id": bad, "k": 1})
        assert reply.status_code == 422 and why in str(reply.json()), reply.json()
