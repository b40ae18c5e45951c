"""The host's copy of the tastes is used only under the epoch it was recorded with."""

from __future__ import annotations

import pytest

from spark_jobs.streaming.taste_cache import EPOCH_KEY, TasteCache, new_epoch

pytestmark = pytest.mark.unit
HERE = ("query-a", 3)


@pytest.fixture
def cache(tmp_path):
    return TasteCache(tmp_path / "tastes", max_listeners=100)


def write(cache: TasteCache, where, epoch, fresh, state_epoch=None):
    """One bucket call: look up (to learn the generation), then store what it wrote under ``epoch``."""
    _, generation = cache.lookup(where, state_epoch, fresh)
    cache.store(where, epoch, generation, fresh)


def test_the_copy_is_used_only_while_the_state_store_holds_its_epoch(cache):
    first = new_epoch()
    write(cache, HERE, first, {"u1": b"one", "u2": b"two"})
    assert cache.lookup(HERE, first, ["u1", "u2", "u3"])[0] == {"u1": b"one", "u2": b"two"}
    assert cache.lookup(("query-b", 3), first, ["u1"])[0] == {}, "another checkpoint's bucket is another copy"
    assert cache.lookup(("query-a", 4), first, ["u1"])[0] == {}


def test_another_epoch_or_none_starts_a_new_generation(cache):
    mine = new_epoch()
    write(cache, HERE, mine, {"u1": b"one"})
    assert cache.lookup(HERE, new_epoch(), ["u1"])[0] == {}, "another host (or a replayed batch) wrote the bucket"
    assert cache.lookup(HERE, None, ["u1"])[0] == {}, "a new checkpoint has no epoch yet"
    # A call that found the copy stale stores under a new generation: what it did not write is not used again.
    stale_seen = new_epoch()
    write(cache, HERE, (after := new_epoch()), {"u2": b"two"}, state_epoch=stale_seen)
    assert cache.lookup(HERE, after, ["u1", "u2"])[0] == {"u2": b"two"}


def test_a_failed_task_leaves_a_copy_that_never_matches_again(cache):
    committed = new_epoch()
    write(cache, HERE, committed, {"u1": b"v1"})
    write(cache, HERE, new_epoch(), {"u1": b"v2"}, state_epoch=committed)  # a task whose state was not committed
    # The replay reads the committed epoch back from the state store: the attempt's copy is not used.
    assert cache.lookup(HERE, committed, ["u1"])[0] == {}


def test_calls_in_a_chain_keep_what_earlier_calls_stored(cache):
    e1, e2 = new_epoch(), new_epoch()
    write(cache, HERE, e1, {"u1": b"a", "u2": b"b"})
    write(cache, HERE, e2, {"u2": b"B", "u3": b"c"}, state_epoch=e1)
    assert cache.lookup(HERE, e2, ["u1", "u2", "u3"])[0] == {"u1": b"a", "u2": b"B", "u3": b"c"}


def test_a_second_process_sees_the_same_copy(cache, tmp_path):
    import subprocess
    import sys

    e = new_epoch()
    write(cache, HERE, e, {"u1": b"one"})
    read = (
        "import sys; from pathlib import Path; from spark_jobs.streaming.taste_cache import TasteCache; "
        f"print(TasteCache(Path(sys.argv[1]), max_listeners=100).lookup({HERE!r}, bytes.fromhex(sys.argv[2]), ['u1']))"
    )
    out = subprocess.run([sys.executable, "-c", read, str(tmp_path / "tastes"), e.hex()], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == "({'u1': b'one'}, 1)", "another Python worker of the host reads it"


def test_the_copy_stays_within_its_size(tmp_path):
    cache = TasteCache(tmp_path / "small", max_listeners=3)
    e1, e2 = new_epoch(), new_epoch()
    write(cache, ("q", 1), e1, {"a": b"1", "b": b"2"})
    write(cache, ("q", 2), e2, {"c": b"3", "d": b"4"})
    assert len(cache) <= 3 and cache.lookup(("q", 1), e1, ["a"])[0] == {}, "full: the copy started again"
    assert cache.lookup(("q", 2), e2, ["c", "d"])[0] == {"c": b"3", "d": b"4"}


def test_long_and_unusual_listener_ids_are_kept_apart(cache):
    e = new_epoch()
    long_id, other = "é" * 256, "é" * 255 + "e"
    write(cache, HERE, e, {long_id: b"x", other: b"y", "": b"z"})
    assert cache.lookup(HERE, e, [long_id, other, ""])[0] == {long_id: b"x", other: b"y", "": b"z"}


def test_the_epoch_key_is_no_listener_id():
    from datetime import UTC, datetime

    from events.contract import InvalidEvent, check_event
    from events.producer import new_event

    with pytest.raises(InvalidEvent, match="limit is 256"):
        check_event(new_event(user_id=EPOCH_KEY, track_id=1, type="play"), now=datetime.now(UTC), max_future_s=300)


def test_a_copy_that_cannot_be_read_is_a_miss_and_is_not_written(tmp_path, monkeypatch):
    import lmdb

    cache = TasteCache(tmp_path / "tastes", max_listeners=100)
    e = new_epoch()
    write(cache, HERE, e, {"u1": b"one"})

    def broken(*args, **kwargs):
        raise lmdb.Error("Input/output error")

    monkeypatch.setattr(cache, "_lookup", broken)
    found, generation = cache.lookup(HERE, e, ["u1"])
    assert found == {} and generation is None
    cache.store(HERE, new_epoch(), generation, {"u1": b"two"})  # nothing is recorded without a generation
    monkeypatch.undo()
    assert cache.lookup(HERE, e, ["u1"])[0] == {"u1": b"one"}


def test_tastes_larger_than_a_page_are_dropped_by_the_room_they_take_before_the_map_fills(tmp_path, caplog):
    """A taste of 4.1-8 KB takes two 4 KB pages of LMDB's map: counted by entries alone, a copy of such
    tastes filled its map before the count said so, and the failed store stopped the stream."""
    cache = TasteCache(tmp_path / "tastes", max_listeners=10_000, map_bytes=2 << 20)
    for call in range(60):  # 60 calls of 20 listeners of 6 KB: three times the map
        epoch = new_epoch()
        fresh = {f"u{call}-{n}": bytes([n]) * 6000 for n in range(20)}
        write(cache, ("q", call % 4), epoch, fresh)
        assert cache.lookup(("q", call % 4), epoch, list(fresh))[0] == fresh, f"call {call}: the copy was not kept"
    assert "full" not in caplog.text


def test_a_copy_whose_map_is_already_full_starts_again_instead_of_failing_the_call(tmp_path, caplog):
    import lmdb

    path = tmp_path / "tastes"
    path.mkdir()
    # An older version's file, filled to the last page: dropping its ~2,000 pages needs room for the list of
    # the pages freed, which it no longer has (the drop itself fails: what stopped the stream).
    env = lmdb.open(str(path), map_size=8 << 20)
    for size in (6000, 100, 1):
        with pytest.raises(lmdb.MapFullError):
            for n in range(100_000):
                with env.begin(write=True) as txn:
                    txn.put(f"k{size}-{n}".encode(), b"x" * size)
    env.close()

    cache = TasteCache(path, max_listeners=10_000, map_bytes=8 << 20)
    e = new_epoch()
    write(cache, HERE, e, {"u1": b"one"})  # the drop this needs has no room left: it must not raise
    assert "full: it starts again" in caplog.text
    e2 = new_epoch()
    write(cache, HERE, e2, {"u1": b"two"}, state_epoch=e)
    assert cache.lookup(HERE, e2, ["u1"])[0] == {"u1": b"two"}, "the new file is used"
