"""History messages: what import-history sends the stream, checked by the contract and folded into a taste once."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from events.contract import MAX_HISTORY, MAX_MESSAGE_BYTES, InvalidEvent, check_history, decode_message
from history.events import event_id, history_messages
from index.reader import Index
from recommend.fold import fold_batch
from recommend.rank import recommend_many
from recommend.taste import Taste
from spark_jobs.streaming.archive import archive_rows
from tests.lookups import raw_of
from tests.unit.test_taste import HOUR_MS, messages_frame, rules

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 1, tzinfo=UTC)
YEAR_MS = 365 * 24 * HOUR_MS


def events_of(user: str, tracks: list[int], start_ms: int, step_ms: int = 60_000, kind: str = "complete") -> list[dict]:
    out = []
    for n, track in enumerate(tracks):
        at = start_ms + n * step_ms
        out.append({"event_id": event_id(user, kind, at // 1000, track), "track_id": track, "type": kind, "ts_ms": at})
    return out


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def test_messages_are_chunks_oldest_first_whose_ids_follow_their_events():
    events = events_of("ana", list(range(1, 2501)), 1_600_000_000_000)
    shuffled = [events[i] for i in np.random.default_rng(3).permutation(len(events))]
    messages = history_messages("ana", shuffled, NOW)
    assert [len(m["history"]) for m in messages] == [MAX_HISTORY, MAX_HISTORY, 500]
    assert messages[0]["history"][0] == [1, "complete", 1_600_000_000_000]
    assert all(len(encode(m)) < MAX_MESSAGE_BYTES for m in messages)
    again = history_messages("ana", events, NOW + timedelta(hours=1))
    assert [m["event_id"] for m in again] == [m["event_id"] for m in messages], "the same events, the same ids"
    other = history_messages("ana", events[1:], NOW)
    assert other[0]["event_id"] != messages[0]["event_id"]
    assert history_messages("bob", events, NOW)[0]["event_id"] != messages[0]["event_id"]
    assert history_messages("ana", [], NOW) == []


def test_the_contract_takes_old_listens_and_names_what_is_wrong():
    (message,) = history_messages("ana", events_of("ana", [5, 6], 1_000_000_000_000), NOW)  # listens of 2001
    event = decode_message(encode(message), now=NOW, max_future_s=300)
    assert event["type"] == "history" and event["track_id"] == 6 and event["history"][0] == (5, "complete", 10**12)
    bad = {
        "a share": ({**message, "history": [[5, "share", 1]]}, "history[0]: track_id 1 to"),
        "no list": ({**message, "history": "5"}, "history must be a list of 1 to 1000"),
        "empty": ({**message, "history": []}, "history must be a list"),
        "too many": ({**message, "history": [[5, "play", 1]] * (MAX_HISTORY + 1)}, "history must be a list"),
        "a float time": ({**message, "history": [[5, "play", 1.5]]}, "history[0] is not a [track_id, type, ts_ms]"),
        "a bool track": ({**message, "history": [[True, "play", 1]]}, "history[0] is not"),
        "the future": ({**message, "history": [[5, "play", 4 * 10**12]]}, "ts_ms from 0 to now"),
        "no listener": ({k: v for k, v in message.items() if k != "user_id"}, "missing field user_id"),
        "sent long ago": ({**message, "ts": "2020-01-01T00:00:00Z"}, "days in the past"),
    }
    for name, (value, reason) in bad.items():
        with pytest.raises(InvalidEvent, match=reason.replace("[", r"\[")):
            check_history(value, now=NOW, max_future_s=300)
        assert name


def test_a_history_folds_each_listen_by_its_age_once(index: Index):
    jazz = [int(t) for t in index.catalogue.ids_of_genre("Jazz")[:30]]
    now = datetime.now(UTC)
    start = int(now.timestamp() * 1000) - 3 * YEAR_MS
    messages = history_messages("ana", events_of("ana", jazz, start, step_ms=YEAR_MS // 30), now, size=10)
    frame = messages_frame([encode(m) for m in messages] + [encode(messages[0])], ["ana"] * 4)
    (folded,), dead = fold_batch(frame, {}, index, rules(now), half_life_ms=YEAR_MS)
    assert not dead and len(folded.applied) == 3 and folded.duplicates == 1
    taste = folded.taste
    assert taste.counts == {"complete": 30} and taste.genre_score == {"Jazz": 45.0} and taste.recent[-1] == jazz[-1]
    one_by_one = Taste()
    for e in sorted(events_of("ana", jazz, start, step_ms=YEAR_MS // 30), key=lambda e: -e["ts_ms"]):
        one_by_one.apply("complete", e["track_id"], e["ts_ms"], raw_of(index, e["track_id"]), genre="Jazz",
                         half_life_ms=YEAR_MS)  # fmt: skip
    assert np.allclose(taste.pos, one_by_one.pos, rtol=1e-4) and taste.pos_w == pytest.approx(one_by_one.pos_w)
    (rec,) = recommend_many(index, [taste], k=5)
    genres = [index.catalogue.get(i["track_id"]).genre for i in rec.items]
    assert genres.count("Jazz") >= 3, genres  # 30 of the 40 Jazz tracks are recent, so not recommended

    # Stored and read back, the taste remembers what it folded: a replayed message changes nothing.
    stored = Taste.from_bytes(taste.to_bytes())
    assert stored.imports == taste.imports and len(stored.imports) == 3
    (again,), _ = fold_batch(messages_frame([encode(messages[1])], ["ana"]), {"ana": stored}, index, rules(now),
                             half_life_ms=YEAR_MS)  # fmt: skip
    assert not again.applied and again.duplicates == 1 and again.taste.counts == {"complete": 30}


def test_listens_of_tracks_no_catalogue_holds_are_left_out_or_the_message_is_a_dead_letter(index: Index):
    jazz = int(index.catalogue.ids_of_genre("Jazz")[0])
    now = datetime.now(UTC)
    events = events_of("ana", [jazz, 10**12], int(now.timestamp() * 1000) - YEAR_MS)
    (mixed,) = history_messages("ana", events, now)
    (unknown,) = history_messages("ana", events[1:], now)
    (folded,), dead = fold_batch(messages_frame([encode(mixed), encode(unknown)], ["ana"] * 2), {}, index,
                                 rules(now), half_life_ms=YEAR_MS)  # fmt: skip
    assert folded.taste.counts == {"complete": 1}
    assert [d["reason"] for d in dead] == ["no track of the history is in the catalogue"]


def test_the_archive_passes_history_messages_on_for_the_import_to_archive(index: Index, tmp_path):
    jazz = int(index.catalogue.ids_of_genre("Jazz")[0])
    now = datetime.now(UTC)
    (message,) = history_messages("ana", events_of("ana", [jazz], int(now.timestamp() * 1000) - YEAR_MS), now)
    run = archive_rows(str(Path(index.folder).parent), 300.0, 86400.0)
    (frame,) = list(run(iter([messages_frame([encode(message)], ["ana"])])))
    assert list(frame["type"]) == ["history"] and frame["rejected"].isna().all()


@pytest.mark.parametrize(
    "body",
    [
        "{T},x,Muse,,,,Song 1,\n{T},x,Muse,,,,Song 2,\n",  # every listen matched, no problem
        "{T},x,Nobody,,,,Gone,\n",  # nothing matched
        "{T},x,too,few\n",  # nothing but problems
        "",  # no rows at all
    ],
)
def test_every_shape_of_file_converts_to_the_rows_spark_takes(body: str):
    """An import's rows of one file cross Arrow into Spark whatever they lack (a column of no values included)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_type

    from history.match import Catalogue, Track
    from spark_jobs.import_history import ROWS, _file_rows

    catalogue = Catalogue([Track(1, "Muse", "Song 1"), Track(2, "Muse", "Song 2")])
    content = ("uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n" + body.format(T=1_600_000_000))
    rows = _file_rows("s.csv", content.encode(), "ana", None, catalogue, {1: "Rock", 2: None}, NOW)
    for f in ROWS.fields:
        assert isinstance(pa.Array.from_pandas(rows[f.name], type=to_arrow_type(f.dataType)), pa.Array), f.name


def test_any_mangled_history_message_is_taken_or_refused_with_a_reason():
    """Fuzzed history messages: each decodes to a history or raises InvalidEvent (never another error)."""
    rng = np.random.default_rng(11)
    (message,) = history_messages("ana", events_of("ana", [5, 6, 7], 1_000_000_000_000), NOW)
    values = [None, True, -1, 0, 2**64, 1.5, "", "play", "share", [], {}, [1], [1, "play"], [[1, "play", 1]],
              "x" * 300, "\ud800", [None, None, None], ["1", "play", 1]]  # fmt: skip
    taken = 0
    for _ in range(3000):
        mangled = json.loads(json.dumps(message))
        for _ in range(rng.integers(1, 4)):
            where = rng.integers(0, 3)
            value = copy.deepcopy(values[rng.integers(len(values))])
            if where == 0:
                mangled[["event_id", "user_id", "ts", "history", "client"][rng.integers(5)]] = value
            elif where == 1 and isinstance(mangled.get("history"), list) and mangled["history"]:
                mangled["history"][rng.integers(len(mangled["history"]))] = value
            elif isinstance(mangled.get("history"), list) and mangled["history"]:
                listen = mangled["history"][0]
                if isinstance(listen, list) and listen:
                    listen[rng.integers(len(listen))] = value
        raw = json.dumps(mangled).encode("utf-8", errors="surrogatepass")
        try:
            event = decode_message(raw, now=NOW, max_future_s=300)
        except InvalidEvent as exc:
            assert str(exc)
            continue
        taken += 1
        assert event["type"] == "history" and all(isinstance(t, int) and t > 0 for t, _, _ in event["history"])
    assert 0 < taken < 3000


def test_folding_a_history_at_once_equals_folding_it_event_by_event(index: Index):
    """Taste.apply_many (a history message) against Taste.apply one event at a time, onto a taste that already
    has newer events: likes, skips and dislikes, and a track no index version places yet."""
    rng = np.random.default_rng(5)
    tracks = [int(t) for t in index.catalogue.ids_of_genre("Rock")[:20] + index.catalogue.ids_of_genre("Pop")[:20]]
    kinds = ["like", "skip", "dislike", "complete", "play"]
    listens = sorted(((t, kinds[rng.integers(5)], int(rng.integers(10**9, 2 * 10**9)), "Rock") for t in tracks),
                     key=lambda x: x[2])  # fmt: skip
    listens.append((10**12, "like", 2 * 10**9, None))  # not placed: counted and kept pending
    vectors = [raw_of(index, t) if t < 10**12 else None for t, _, _, _ in listens]

    def base() -> Taste:
        taste = Taste()
        taste.apply("like", tracks[0], 3 * 10**9, raw_of(index, tracks[0]), genre="Rock", half_life_ms=10**9)
        return taste

    at_once, one_by_one = base(), base()
    at_once.apply_many(listens, vectors, half_life_ms=10**9)
    for (t, kind, ts, genre), vector in zip(listens, vectors, strict=True):
        one_by_one.apply(kind, t, ts, vector, genre=genre, half_life_ms=10**9)
    for side in ("pos", "neg"):
        assert np.allclose(getattr(at_once, side), getattr(one_by_one, side), rtol=1e-4, atol=1e-4), side
    assert at_once.pos_w == pytest.approx(one_by_one.pos_w) and at_once.neg_w == pytest.approx(one_by_one.neg_w)
    same = ("counts", "genre_score", "genre_skips", "recent", "disliked", "positives", "pending", "unplaced",
            "last_ts_ms")  # fmt: skip
    assert {k: getattr(at_once, k) for k in same} == {k: getattr(one_by_one, k) for k in same}
