"""The embedded store's journal: acknowledged writes survive a reopen; torn tails do not.

Real files, real processes (the lock and the disk-full case run in child processes).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from graph_store.journal import (
    Journal,
    JournalCorruptError,
    JournalLockedError,
    check_unlocked,
    encode_batch,
)
from graph_store.memory import MemoryGraphStore
from graph_store.types import ItemRecord, NewInteraction
from tests.graph_store.conftest import toy_frames

ROOT = Path(__file__).resolve().parents[2]


def toy_store(journal: Path) -> MemoryGraphStore:
    store = MemoryGraphStore.from_frames(*toy_frames())
    store.attach_journal(journal)
    return store


async def snapshot(store: MemoryGraphStore) -> dict[str, object]:
    """Everything a reader can see: every user's full history, every item, the counts."""
    index = store.index
    return {
        "counts": await store.counts(),
        "history": {u: await store.history(u, 10_000) for u in sorted(index.user_ids)},
        "items": await store.items([i.item_id for i in index.items]),
    }


BATCHES = [
    (
        [NewInteraction("new-user", "m1", 100, 4.0), NewInteraction("new-user", "x9", 101)],
        [],
    ),  # x9 arrives bare: a placeholder
    (
        [NewInteraction("a", "x9", 102, 2.5), NewInteraction("zoë", "m6", 103)],
        [ItemRecord("x9", "Xanadu", {"year": "1980"}), ItemRecord("m2", "Brazil (1985)")],
    ),
    ([], [ItemRecord("x10", "Yojimbo", {"genre": "samurai"})]),
    ([NewInteraction("new-user", "m1", 100, 4.0)], []),  # a repeat: adds nothing
]


async def test_every_acknowledged_batch_is_there_after_a_reopen(tmp_path: Path) -> None:
    journal = tmp_path / "journal" / "toy.jsonl"
    store = toy_store(journal)
    results = [await store.ingest(rows, records) for rows, records in BATCHES]
    assert [r.new_interactions for r in results] == [2, 2, 0, 0]
    before = await snapshot(store)
    await store.close()

    again = toy_store(journal)
    assert await snapshot(again) == before
    x9 = await again.item("x9")
    assert x9 is not None and not x9.placeholder and x9.title == "Xanadu"
    assert [e.item.item_id for e in await again.history("new-user")] == ["x9", "m1"]
    # replayed rows are known: sending them again adds nothing
    assert (await again.ingest(*BATCHES[1])).new_interactions == 0
    await again.close()


async def test_a_torn_last_record_is_ignored_and_cut_off(tmp_path: Path) -> None:
    journal = tmp_path / "toy.jsonl"
    store = toy_store(journal)
    await store.ingest(*BATCHES[0])
    before = await snapshot(store)
    await store.close()
    good_size = journal.stat().st_size
    torn = encode_batch([NewInteraction("ghost", "m1", 1)], [])
    for cut in (len(torn) // 2, len(torn) - 1):  # mid-record; everything but the newline
        with journal.open("ab") as file:
            file.write(torn[:cut])
        again = toy_store(journal)
        assert await snapshot(again) == before
        assert journal.stat().st_size == good_size  # the torn bytes are gone
        await again.close()
    # a record whose checksum does not match its bytes is torn too
    flipped = torn.replace(b'"ghost"', b'"ghosT"')
    journal.write_bytes(journal.read_bytes() + flipped)
    again = toy_store(journal)
    assert await again.history("ghost") == [] and await again.history("ghosT") == []
    # and the journal goes on from the last good record
    await again.ingest(*BATCHES[1])
    after = await snapshot(again)
    await again.close()
    assert await snapshot(toy_store(journal)) == after


def test_damage_before_the_end_refuses_to_open(tmp_path: Path) -> None:
    journal = tmp_path / "toy.jsonl"
    first, second = (encode_batch(rows, records) for rows, records in BATCHES[:2])
    journal.write_bytes(first.replace(b"new-user", b"new-usex") + second)
    with pytest.raises(JournalCorruptError, match="damaged at byte 0"):
        Journal.open(journal)
    assert journal.read_bytes().endswith(second)  # nothing dropped


async def test_load_frames_is_journaled_too(tmp_path: Path) -> None:
    journal = tmp_path / "toy.jsonl"
    store = MemoryGraphStore()
    store.attach_journal(journal)
    await store.load_frames(*toy_frames())
    before = await snapshot(store)
    await store.close()
    again = MemoryGraphStore()
    again.attach_journal(journal)
    assert await snapshot(again) == before


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_second_process_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "toy.jsonl"
    store = toy_store(journal)
    child = run_child(
        f"""
        from pathlib import Path
        from graph_store.journal import Journal, JournalLockedError
        try:
            Journal.open(Path({str(journal)!r}))
        except JournalLockedError as err:
            print(err)
        """
    )
    assert child.returncode == 0, child.stderr
    assert str(journal) in child.stdout and "--workers 1" in child.stdout
    assert "Neo4j" in child.stdout
    with pytest.raises(JournalLockedError):
        check_unlocked(journal)
    store._journal.close()  # type: ignore[union-attr]
    check_unlocked(journal)  # free once the holder closes


def test_a_failed_journal_write_fails_the_ingest_and_changes_nothing(tmp_path: Path) -> None:
    """A real write failure: the child's file-size limit (EFBIG) stops the append."""
    journal = tmp_path / "toy.jsonl"
    child = run_child(
        f"""
        import asyncio, resource, signal
        from pathlib import Path
        from graph_store.journal import JournalWriteError
        from graph_store.memory import MemoryGraphStore
        from graph_store.types import NewInteraction
        from tests.graph_store.conftest import toy_frames

        async def main():
            path = Path({str(journal)!r})
            store = MemoryGraphStore.from_frames(*toy_frames())
            store.attach_journal(path)
            await store.ingest([NewInteraction("u1", "m1", 1)])
            size, counts = path.stat().st_size, await store.counts()
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, hard))
            big = [NewInteraction("u2", f"m{{k}}", k) for k in range(50)]
            try:
                await store.ingest(big)
            except JournalWriteError as err:
                print("refused:", err)
            assert await store.counts() == counts, "the graph changed"
            assert await store.history("u2") == []
            assert path.stat().st_size == size, "torn bytes left behind"
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            assert (await store.ingest(big)).new_interactions == 50  # it goes on
            await store.close()
            again = MemoryGraphStore.from_frames(*toy_frames())
            again.attach_journal(path)
            assert len(await again.history("u2", 100)) == 50
            print("ok")

        asyncio.run(main())
        """
    )
    assert child.returncode == 0, child.stderr
    assert "refused: could not write the graph journal" in child.stdout
    assert "File too large" in child.stdout and child.stdout.endswith("ok\n")
