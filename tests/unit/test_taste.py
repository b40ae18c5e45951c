"""The taste model, the recommender and the per-listener fold, without Spark or servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from events.contract import format_ts
from events.producer import new_event
from index.reader import Index
from recommend.fold import Rules, fold_batch
from recommend.rank import recommend, recommend_many
from recommend.taste import DEDUP_WINDOW_MS, Taste
from tests.lookups import point_of, raw_of

pytestmark = pytest.mark.unit
HOUR_MS = 3600 * 1000


def test_the_state_format_round_trips():
    t = Taste()
    rng = np.random.default_rng(0)
    for i, kind in enumerate(["like", "skip", "complete", "dislike", "play"]):
        t.apply(
            kind, i + 1, 1_000 * (i + 1), rng.normal(size=5), genre="Rock" if i % 2 else "Jazz", half_life_ms=HOUR_MS
        )
        t.remember(f"e{i}", 1_000 * (i + 1))
    back = Taste.from_bytes(t.to_bytes())
    assert back.profile() == t.profile()
    assert np.array_equal(back.pos, t.pos) and np.array_equal(back.neg, t.neg)  # float32 in memory and stored
    assert back.seen == t.seen and back.recent == t.recent and back.disliked == t.disliked


def test_a_listener_who_never_pushed_away_stores_one_vector():
    pulled, pushed = Taste(), Taste()
    vector = np.linspace(0, 1, 519)
    pulled.apply("like", 1, 1_000, vector, genre="Rock", half_life_ms=HOUR_MS)
    pushed.apply("like", 1, 1_000, vector, genre="Rock", half_life_ms=HOUR_MS)
    pushed.apply("skip", 2, 2_000, vector[::-1], genre="Rock", half_life_ms=HOUR_MS)
    assert len(pushed.to_bytes()) - len(pulled.to_bytes()) >= 519 * 4
    back = Taste.from_bytes(pulled.to_bytes())
    assert back.neg_w == 0 and not back.neg.any() and back.neg.shape == (519,)


def test_the_taste_does_not_depend_on_arrival_order():
    rng = np.random.default_rng(1)
    events = [
        (k, i, int(rng.integers(0, 10 * HOUR_MS)), rng.normal(size=4))
        for i, k in enumerate(["like", "skip", "complete", "like", "dislike", "play"] * 3)
    ]
    a, b = Taste(), Taste()
    for kind, track, ts, v in events:
        a.apply(kind, track, ts, v, genre=None, half_life_ms=HOUR_MS)
    for kind, track, ts, v in sorted(events, key=lambda e: -e[2]):
        b.apply(kind, track, ts, v, genre=None, half_life_ms=HOUR_MS)
    assert np.allclose(a.pos, b.pos) and np.allclose(a.neg, b.neg)
    assert a.pos_w == pytest.approx(b.pos_w) and a.counts == b.counts


def test_one_batch_or_many_with_the_state_store_between_give_the_same_taste_bit_for_bit():
    """Regression: with float64 in memory and float32 stored, batch boundaries changed scores (restart test)."""
    rng = np.random.default_rng(3)
    events = [(k, i, 1_000 * (i + 1), rng.normal(size=519)) for i, k in enumerate(["like", "skip", "play"] * 7)]
    whole = Taste()
    for kind, track, ts, v in events:
        whole.apply(kind, track, ts, v, genre="Rock", half_life_ms=HOUR_MS)
    split = Taste()
    for start in range(0, len(events), 4):  # four events a batch, stored and read back between batches
        for kind, track, ts, v in events[start : start + 4]:
            split.apply(kind, track, ts, v, genre="Rock", half_life_ms=HOUR_MS)
        split = Taste.from_bytes(split.to_bytes())
    assert whole.to_bytes() == split.to_bytes()


def test_old_event_ids_leave_the_dedup_window():
    t = Taste()
    t.apply("play", 1, 10 * DEDUP_WINDOW_MS, None, genre=None, half_life_ms=HOUR_MS)
    t.remember("old", 1)
    t.remember("new", 10 * DEDUP_WINDOW_MS)
    t.forget_old_ids()
    assert not t.is_duplicate("old") and t.is_duplicate("new")


def test_skips_push_recommendations_away_from_a_genre(index: Index):
    cat = index.catalogue
    rock, folk = cat.ids_of_genre("Rock"), cat.ids_of_genre("Folk")
    t = Taste()
    for i, track in enumerate(rock[:5] + folk[:5]):
        t.apply("complete", track, i, raw_of(index, track), genre=cat.get(track).genre, half_life_ms=HOUR_MS)
    before = sum(i["genre"] == "Folk" for i in recommend(index, t, k=10).items)
    for i, track in enumerate(folk[5:15]):
        t.apply("skip", track, 100 + i, raw_of(index, track), genre="Folk", half_life_ms=HOUR_MS)
    after = sum(i["genre"] == "Folk" for i in recommend(index, t, k=10).items)
    assert after < before


def test_a_single_like_starts_a_radio(index: Index):
    seed = index.catalogue.ids_of_genre("Jazz")[0]
    t = Taste()
    t.apply("like", seed, 1, raw_of(index, seed), genre="Jazz", half_life_ms=HOUR_MS)
    rec = recommend(index, t, k=5)
    assert rec.source == "radio" and len(rec.items) == 5
    assert seed not in [i["track_id"] for i in rec.items]


def rules(now: datetime | None = None) -> Rules:
    return Rules(now=now or datetime.now(UTC), max_future_s=300, max_age_s=86400)


def messages_frame(messages: list[bytes], users: list[str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"value": messages, "kafka_partition": 0, "kafka_offset": range(len(messages)), "kafka_ts_ms": 0}
    )
    if users is not None:
        frame["user_key"] = users
    return frame


def test_fold_sorts_out_bad_duplicate_and_good_messages(index: Index):
    from spark_jobs.streaming.rows import bucket_summary, dead_rows, listener_document, output_frame

    track = index.catalogue.ids_of_genre("Pop")[0]
    good = new_event(user_id="u1", track_id=track, type="like")
    messages = [
        json.dumps(good).encode(),
        json.dumps(good).encode(),  # the same event again
        b"not json",
        json.dumps({**good, "event_id": "x2", "track_id": 10**9}).encode(),
        json.dumps({**good, "event_id": "x3", "ts": format_ts(datetime(2099, 1, 1, tzinfo=UTC))}).encode(),
    ]
    folded, dead = fold_batch(messages_frame(messages), {}, index, rules(), half_life_ms=HOUR_MS)
    assert [f.user_id for f in folded] == ["u1"]
    (u1,) = folded
    assert len(u1.applied) == 1 and u1.duplicates == 1 and u1.taste.counts == {"like": 1}
    reasons = [d["reason"] for d in dead]
    assert reasons[0].startswith("not JSON") and "not in the catalogue" in reasons[1] and "future" in reasons[2]
    (rec,) = recommend_many(index, [u1.taste], k=5)
    assert rec.source == "radio"
    written = u1.applied[0]["ts_ms"] + 250.5
    assert bucket_summary(folded, {"u1": written}) == {"applied": 1, "duplicates": 1, "users": 1, "latency_ms": [250.5]}
    assert bucket_summary(folded, {}) == {"applied": 1, "duplicates": 1, "users": 0, "latency_ms": []}, "not written"
    rows = dead_rows(dead) + [{"kind": "bucket", "stats": json.dumps(bucket_summary(folded, {"u1": written}))}]
    doc = json.loads(json.dumps(listener_document(u1, rec, index)))
    assert (
        doc["events_total"] == 1
        and doc["profile"]["counts"]["like"] == 1
        and doc["trigger_event_id"] == good["event_id"]
    )
    frame = output_frame(rows)  # converts to the processor's Arrow schema with missing values
    assert list(frame["kind"]) == ["dlq", "dlq", "dlq", "bucket"]
    assert str(frame["kafka_offset"].dtype) == "Int64" and frame["stats"].iloc[0] is None


def test_one_call_folds_many_listeners_and_reads_only_their_tastes(index: Index):
    """A bucket of listeners: each fold sees only its own events; the reader is asked once, for those listeners."""
    pop, jazz = index.catalogue.ids_of_genre("Pop"), index.catalogue.ids_of_genre("Jazz")
    events = [new_event(user_id=f"u{i}", track_id=int((pop if i % 2 else jazz)[i]), type="like") for i in range(40)]
    stored = Taste()
    stored.apply("like", int(jazz[0]), 1, raw_of(index, int(jazz[0])), genre="Jazz", half_life_ms=HOUR_MS)
    asked: list[list[str]] = []

    def read(users: list[str]) -> dict[str, Taste]:
        asked.append(users)
        return {"u3": stored}

    frame = messages_frame([json.dumps(e).encode() for e in events], [e["user_id"] for e in events])
    folded, dead = fold_batch(frame, read, index, rules(), half_life_ms=HOUR_MS)
    assert not dead and len(asked) == 1 and sorted(asked[0]) == sorted(e["user_id"] for e in events)
    by_user = {f.user_id: f for f in folded}
    assert by_user["u3"].taste.events == 2 and by_user["u4"].taste.events == 1
    recs = recommend_many(index, [f.taste for f in folded], k=5)
    singles = [recommend(index, f.taste, k=5) for f in folded]
    assert [r.items for r in recs] == [r.items for r in singles], "batched answers equal one-by-one answers"


def test_a_user_id_that_disagrees_with_the_grouping_key_is_rejected(index: Index):
    track = int(index.catalogue.ids_of_genre("Pop")[0])
    event = new_event(user_id="alice", track_id=track, type="like")
    frame = messages_frame([json.dumps(event).encode()], ["mallory"])
    folded, dead = fold_batch(frame, {}, index, rules(), half_life_ms=HOUR_MS)
    assert not folded and dead[0]["reason"] == "user_id is not a plain JSON string"


def test_stored_items_are_parallel_arrays_that_read_back_as_the_ranked_items():
    from recommend.items import items_of, stored_items

    items = [
        {"track_id": 7, "score": 0.9, "reason": "a", "genre": "Rock"},
        {"track_id": 3, "score": 0.5, "reason": "b", "genre": None},
    ]
    stored = stored_items(items)
    assert stored == {"track_id": [7, 3], "score": [0.9, 0.5], "reason": ["a", "b"], "genre": ["Rock", None]}
    assert items_of(stored) == items
    assert items_of({"track_id": [7, 3]}) == [{"track_id": 7}, {"track_id": 3}], "a projection of one field"
    assert items_of(None) == [] and items_of({}) == []


def test_a_recommendation_reads_the_same_as_items_or_as_columns():
    from recommend.items import Recommendation, stored_items

    items = [{"track_id": 7, "score": 0.9, "reason": "a", "genre": "Rock"}]
    by_items, by_columns = Recommendation("taste", items), Recommendation.of_columns("taste", stored_items(items))
    assert by_items.columns == stored_items(items) and by_columns.items == items
    assert by_items == by_columns and by_items != Recommendation("radio", items)


def _plain_recommendation(index: Index, taste: Taste, *, k: int, max_per_artist: int) -> list[int]:
    """The ranking rules read one listener at a time over every track: the oracle of the array version."""
    from recommend.rank import AWAY, POOL, PUSH

    pos, neg, share = taste.centre("pos"), taste.centre("neg"), taste.negative_share()
    z_pos = index.standardize(pos) if pos is not None else np.zeros(len(index.manifest.columns), np.float32)
    z_neg = index.standardize(neg) if neg is not None else None
    z = z_pos if z_neg is None else z_pos + AWAY * share * (z_pos - z_neg)
    query = SimpleNamespace(
        p_neg=index.project(z_neg) if z_neg is not None else None, share=share,
        excluded=set(taste.recent) | set(taste.disliked),
    )  # fmt: skip
    p = index.project(z).astype(np.float64)
    ids = [int(t) for t in index.track_ids() if int(t) not in query.excluded]
    points = {t: point_of(index, t).astype(np.float64) for t in ids}
    pool = sorted(ids, key=lambda t: (np.linalg.norm(points[t] - p), t))[: POOL * k]
    rank = {t: np.linalg.norm(points[t] - p) for t in pool}
    if query.p_neg is not None:
        for t in pool:
            rank[t] -= PUSH * query.share * np.linalg.norm(points[t] - query.p_neg)
    picked, per_artist = [], {}
    for t in sorted(pool, key=lambda t: (rank[t], t)):
        artist = index.catalogue.get(t).artist
        if per_artist.get(artist, 0) < max_per_artist:
            per_artist[artist] = per_artist.get(artist, 0) + 1
            picked.append(t)
    return picked[:k]


def test_the_batched_ranking_equals_the_rules_read_one_listener_at_a_time(index: Index):
    """Exclusions, the push away from skips, the artist cap and the cut at k, over many listeners at once."""
    rng = np.random.default_rng(7)
    ids = [int(t) for t in index.track_ids()]
    tastes = []
    for i in range(24):
        t = Taste()
        for track in rng.choice(ids, size=3 + i % 4, replace=False).tolist():
            kind = ["like", "complete", "skip", "dislike", "play"][(i + track) % (5 if i % 3 else 2)]
            genre = index.catalogue.get(track).genre
            t.apply(kind, track, 1_000 * track, raw_of(index, track), genre=genre, half_life_ms=HOUR_MS)
        tastes.append(t)
    assert sum(t.neg_w > 0 for t in tastes) >= 8, "the case needs listeners who pushed away"
    recs = recommend_many(index, tastes, k=8, max_per_artist=2)
    for taste, rec in zip(tastes, recs, strict=True):
        got = [item["track_id"] for item in rec.items]
        assert got == _plain_recommendation(index, taste, k=8, max_per_artist=2)
        assert not set(got) & (set(taste.recent) | set(taste.disliked))


def test_a_listeners_answer_is_the_same_alone_or_in_any_batch(index: Index):
    """The queries are standardized together: each listener's answer equals the one it gets alone, bit for bit,
    whichever listeners share its call; a taste that cannot be a query yet gets nothing, beside the others."""
    rng = np.random.default_rng(11)
    ids = [int(t) for t in index.track_ids()]
    width = len(index.manifest.columns)
    tastes = []
    for i in range(12):
        t = Taste()
        for track in rng.choice(ids, size=2 + i % 3, replace=False).tolist():
            kind = ["like", "skip", "complete", "dislike"][(i + track) % (4 if i % 2 else 1)]
            t.apply(kind, track, 1_000 * track, raw_of(index, track), genre=None, half_life_ms=HOUR_MS)
        tastes.append(t)
    only_pushed = Taste()
    only_pushed.apply("dislike", ids[0], 5_000, raw_of(index, ids[0]), genre=None, half_life_ms=HOUR_MS)
    broken = Taste(dims=width, pos=np.full(width, np.nan, np.float32), pos_w=1.0, neg=np.zeros(width, np.float32))
    other_space = Taste(dims=3, pos=np.ones(3, np.float32), pos_w=1.0, neg=np.zeros(3, np.float32))
    tastes[3:3] = [only_pushed, broken, other_space, Taste()]
    together = recommend_many(index, tastes, k=6)
    alone = [recommend_many(index, [t], k=6)[0] for t in tastes]
    shuffled = [tastes[i] for i in rng.permutation(len(tastes))]
    by_taste = {id(t): r for t, r in zip(shuffled, recommend_many(index, shuffled, k=6), strict=True)}
    for taste, a, b in zip(tastes, together, alone, strict=True):
        assert a.items == b.items == by_taste[id(taste)].items
    assert together[3].items, "a listener who only pushed away is answered"
    assert [r.items for r in together[4:7]] == [[], [], []], "NaN, another index space, nothing yet: no answer"
