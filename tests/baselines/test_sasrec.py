"""SASRec: learns a sequential rule, is seeded, tunes on validation cases, reads item
vectors beside its id embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines import make_baseline
from baselines.common import Catalog
from baselines.sasrec import ItemReadings, SASRecConfig, SASRecGrid, SASRecRanker
from evaluation.ranker import Case
from reasoning.sasrec_net import SASRecNet
from tests.baselines.synthetic import cyclic_log, items_frame, ring_case, target_first_rate

FAST = SASRecConfig(hidden=32, blocks=1, dropout=0.1, max_len=12, lr=5e-3, batch_size=64, epochs=40)


def _cases() -> list[Case]:
    return [ring_case(f"new{s}", s) for s in range(0, 60, 4)]


def test_sasrec_learns_next_item_on_the_ring() -> None:
    ranker = SASRecRanker(FAST)
    ranker.fit(cyclic_log(300), items_frame(60))
    result = ranker.rank(_cases())
    assert result.scores.shape == (15, 20) and result.valid.all()
    assert target_first_rate(result.scores, _cases()) >= 0.9
    assert ranker.epoch_losses[-1] < ranker.epoch_losses[0]


def test_sasrec_is_deterministic_under_a_seed() -> None:
    cfg = SASRecConfig(hidden=16, blocks=1, max_len=10, epochs=2)
    scores = []
    for _ in range(2):
        ranker = SASRecRanker(cfg)
        ranker.fit(cyclic_log(50), items_frame(60))
        scores.append(ranker.rank(_cases()).scores)
    np.testing.assert_array_equal(scores[0], scores[1])


def test_padding_does_not_change_the_last_hidden_state() -> None:
    torch.manual_seed(0)
    net = SASRecNet(n_items=20, hidden=16, blocks=2, heads=2, dropout=0.0, max_len=8).eval()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])
    torch.testing.assert_close(net(short)[:, -1], net(padded)[:, -1])
    assert not net(padded)[0, :5].any()


def test_tune_picks_a_grid_point_and_its_best_epoch() -> None:
    grid = SASRecGrid(hidden=(16,), blocks=(1,), dropout=(0.0, 0.3), lr=(5e-3,), max_len=(10,))
    base = SASRecConfig(epochs=6, eval_every=2, patience=2, batch_size=64)
    ranker = SASRecRanker(base, grid)
    valid_cases = _cases()
    chosen = ranker.tune(cyclic_log(200, seed=1), valid_cases, items_frame(60))
    assert len(ranker.trials) == 2
    best = max(ranker.trials, key=lambda t: (t.ndcg10, t.hr1))
    assert chosen is ranker.config and chosen.dropout == best.config.dropout
    assert chosen.epochs == best.best_epoch and best.best_epoch % 2 == 0
    assert all(t.curve and t.best_epoch <= t.epochs_run for t in ranker.trials)
    with pytest.raises(ValueError, match="validation cases"):
        ranker.tune(cyclic_log(20), [], items_frame(60))


def test_registry_override_pins_the_grid_axis() -> None:
    ranker = make_baseline("sasrec", dropout=0.3, max_len=20)
    assert isinstance(ranker, SASRecRanker)
    points = ranker.grid.points(ranker.config)
    assert {p.dropout for p in points} == {0.3} and {p.max_len for p in points} == {20}
    assert len(points) == 1


def test_sasrec_cold_user_without_history_gets_popularity() -> None:
    train = cyclic_log(40)
    counts = train["item_id"].value_counts()
    ranker = SASRecRanker(SASRecConfig(hidden=16, blocks=1, max_len=10, epochs=1))
    ranker.fit(train, items_frame(60))
    most, least = str(counts.index[0]), str(counts.index[-1])
    scores = ranker.rank([Case("cold", most, (), (least, most))]).scores[0]
    assert scores[1] > scores[0]


def test_tune_keeps_the_chosen_net_which_fit_would_train_again() -> None:
    grid = SASRecGrid(hidden=(16,), blocks=(1,), dropout=(0.0,), lr=(5e-3,), max_len=(10,))
    base = SASRecConfig(epochs=6, eval_every=2, patience=2, batch_size=64)
    tuned = SASRecRanker(base, grid)
    chosen = tuned.tune(cyclic_log(200, seed=1), _cases(), items_frame(60))
    refit = SASRecRanker(chosen)
    refit.fit(cyclic_log(200, seed=1), items_frame(60))
    np.testing.assert_allclose(tuned.rank(_cases()).scores, refit.rank(_cases()).scores)


def test_readings_add_a_learned_projection_to_each_item_embedding() -> None:
    readings = torch.randn(21, 5)
    readings[0] = 0.0
    net = SASRecNet(20, hidden=8, blocks=1, heads=1, dropout=0.0, max_len=6, readings=readings)
    assert net.reading_proj is not None
    items = torch.tensor([[0, 3, 17]])
    expected = net.item_emb(items) + net.reading_proj(readings[items])
    torch.testing.assert_close(net.embed(items), expected)
    assert not net.embed(torch.tensor([0])).any()  # padding stays zero
    with pytest.raises(ValueError, match="readings have 20 rows, need 21"):
        SASRecNet(20, 8, 1, 1, 0.0, 6, readings=torch.zeros(20, 5))


def test_item_readings_follow_the_catalog_and_zero_the_unknown() -> None:
    readings = ItemReadings(("5", "7"), np.array([[1.0, 2.0], [3.0, 4.0]]))
    catalog = Catalog.build(cyclic_log(10), items_frame(10))
    aligned = readings.aligned(catalog).numpy()
    assert aligned.shape == (catalog.n_items + 1, 2)
    assert aligned[catalog.item_index["7"] + 1].tolist() == [3.0, 4.0]
    assert aligned[catalog.item_index["5"] + 1].tolist() == [1.0, 2.0]
    assert np.abs(aligned).sum() == 10.0  # padding and items without a reading are zero


def test_sasrec_with_readings_still_learns_the_ring() -> None:
    rng = np.random.default_rng(0)
    items = items_frame(60)
    ids = tuple(items["item_id"].astype(str))
    ranker = SASRecRanker(FAST, readings=ItemReadings(ids, rng.normal(size=(60, 8))))
    ranker.fit(cyclic_log(300), items)
    assert target_first_rate(ranker.rank(_cases()).scores, _cases()) >= 0.9
