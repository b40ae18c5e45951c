"""The taste model, the recommender and the per-listener fold, without Spark or servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from events.contract import format_ts
from events.producer import new_event
from index.local import build_version
from index.query import SimilarityIndex
from index.recommend import recommend
from index.synthetic import COLUMNS, synthetic_catalogue
from index.taste import DEDUP_WINDOW_MS, Taste

pytestmark = pytest.mark.unit
HOUR_MS = 3600 * 1000


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> SimilarityIndex:
    ids, raw, frame = synthetic_catalogue(per_genre=40, artists_per_genre=4)
    root = tmp_path_factory.mktemp("index")
    return SimilarityIndex(build_version(Path(root), ids, raw, COLUMNS, feature_version="t", catalogue=frame, shards=2))


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
    assert np.array_equal(back.pos, t.pos) and np.array_equal(back.neg, t.neg)
    assert back.seen == t.seen and back.recent == t.recent and back.disliked == t.disliked


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


def test_old_event_ids_leave_the_dedup_window():
    t = Taste()
    t.apply("play", 1, 10 * DEDUP_WINDOW_MS, None, genre=None, half_life_ms=HOUR_MS)
    t.remember("old", 1)
    t.remember("new", 10 * DEDUP_WINDOW_MS)
    t.forget_old_ids()
    assert not t.is_duplicate("old") and t.is_duplicate("new")


def test_skips_push_recommendations_away_from_a_genre(index: SimilarityIndex):
    cat = index.catalogue
    rock, folk = cat.ids_of_genre("Rock"), cat.ids_of_genre("Folk")
    t = Taste()
    for i, track in enumerate(rock[:5] + folk[:5]):
        t.apply("complete", track, i, index.raw_of(track), genre=cat.get(track).genre, half_life_ms=HOUR_MS)
    before = sum(i["genre"] == "Folk" for i in recommend(index, t, k=10).items)
    for i, track in enumerate(folk[5:15]):
        t.apply("skip", track, 100 + i, index.raw_of(track), genre="Folk", half_life_ms=HOUR_MS)
    after = sum(i["genre"] == "Folk" for i in recommend(index, t, k=10).items)
    assert after < before


def test_a_single_like_starts_a_radio(index: SimilarityIndex):
    seed = index.catalogue.ids_of_genre("Jazz")[0]
    t = Taste()
    t.apply("like", seed, 1, index.raw_of(seed), genre="Jazz", half_life_ms=HOUR_MS)
    rec = recommend(index, t, k=5)
    assert rec.source == "radio" and len(rec.items) == 5
    assert seed not in [i["track_id"] for i in rec.items]


def test_fold_sorts_out_bad_duplicate_and_good_messages(index: SimilarityIndex):
    from spark_jobs.stream import fold_events, output_frame

    track = index.catalogue.ids_of_genre("Pop")[0]
    good = new_event(user_id="u1", track_id=track, type="like")
    messages = [
        json.dumps(good).encode(),
        json.dumps(good).encode(),  # the same event again
        b"not json",
        json.dumps({**good, "event_id": "x2", "track_id": 10**9}).encode(),
        json.dumps({**good, "event_id": "x3", "ts": format_ts(datetime(2099, 1, 1, tzinfo=UTC))}).encode(),
    ]
    rows = pd.DataFrame(
        {"value": messages, "kafka_partition": 0, "kafka_offset": range(len(messages)), "kafka_ts_ms": 0}
    )
    taste, out = fold_events(
        None,
        rows,
        index,
        user_key="u1",
        now=datetime.now(UTC),
        max_future_s=300,
        max_age_s=86400,
        half_life_ms=HOUR_MS,
        k=5,
    )
    kinds = [o["kind"] for o in out]
    assert kinds == ["dlq", "dlq", "dlq", "stats", "rec", "profile"]
    assert json.loads(out[3]["doc"])["applied"] == 1 and json.loads(out[3]["doc"])["duplicates"] == 1
    reasons = [o["reason"] for o in out if o["kind"] == "dlq"]
    assert reasons[0].startswith("not JSON") and "not in the catalogue" in reasons[1] and "future" in reasons[2]
    assert taste.counts == {"like": 1}
    assert json.loads(out[-2]["doc"])["source"] == "radio"
    frame = output_frame(out)  # converts to the processor's Arrow schema with missing values
    assert len(frame) == 6 and str(frame["kafka_offset"].dtype) == "Int64" and frame["doc"].iloc[0] is None


def test_without_an_index_every_event_is_a_dead_letter():
    from spark_jobs.stream import fold_events

    rows = pd.DataFrame(
        {
            "value": [json.dumps(new_event(user_id="u", track_id=1, type="play")).encode()],
            "kafka_partition": 0,
            "kafka_offset": [0],
            "kafka_ts_ms": 0,
        }
    )
    taste, out = fold_events(
        None,
        rows,
        None,
        user_key="u",
        now=datetime.now(UTC),
        max_future_s=300,
        max_age_s=86400,
        half_life_ms=HOUR_MS,
        k=5,
    )
    assert taste is None and [o["kind"] for o in out] == ["dlq"] and "no index" in out[0]["reason"]
