"""Events of catalogued tracks the index cannot place yet: applied, counted, placed by a later version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from events.producer import new_event
from index.local import build_version
from index.reader import Index
from index.synthetic import COLUMNS, synthetic_catalogue
from recommend.fold import fold_batch
from recommend.taste import Taste
from spark_jobs.streaming.archive import archive_rows
from tests.unit.test_taste import HOUR_MS, messages_frame, rules

pytestmark = pytest.mark.unit
NEW = 10**12 + 7  # a track ingested after the index was built


class Catalogue:
    """A lookup over a fixed set of catalogued ids that records what it was asked."""

    def __init__(self, genres: dict[int, str | None]):
        self.genres, self.asked = genres, []

    def __call__(self, ids: list[int]) -> dict[int, str | None]:
        self.asked.append(list(ids))
        return {t: self.genres[t] for t in ids if t in self.genres}


def frame_of(*events: dict) -> pd.DataFrame:
    return messages_frame([json.dumps(e).encode() for e in events])


def test_before_any_index_a_catalogued_track_is_applied_and_an_unknown_one_is_a_dead_letter():
    lookup = Catalogue({NEW: "Jazz"})
    frame = frame_of(new_event(user_id="u", track_id=NEW, type="like"), new_event(user_id="u", track_id=5, type="play"))
    folded, dead = fold_batch(frame, {}, None, rules(), half_life_ms=HOUR_MS, lookup=lookup)
    assert [f.user_id for f in folded] == ["u"] and len(folded[0].applied) == 1
    profile = folded[0].taste.profile()
    assert profile["counts"]["like"] == 1 and profile["unplaced"] == 1 and profile["genre_score"] == {"Jazz": 3.0}
    assert [d["reason"] for d in dead] == ["track_id 5 is not in the catalogue"]
    assert lookup.asked == [[5, NEW]], "one question for the whole batch"


def test_the_catalogue_is_asked_only_for_ids_the_index_lacks(index: Index):
    known = int(index.catalogue.ids_of_genre("Rock")[0])
    lookup = Catalogue({NEW: None})
    frame = frame_of(new_event(user_id="u", track_id=known, type="like"))
    folded, dead = fold_batch(frame, {}, index, rules(), half_life_ms=HOUR_MS, lookup=lookup)
    assert folded and not dead and lookup.asked == []
    folded, dead = fold_batch(
        frame_of(new_event(user_id="u", track_id=NEW, type="skip")), {}, index, rules(), half_life_ms=HOUR_MS,
        lookup=lookup,
    )  # fmt: skip
    assert lookup.asked == [[NEW]] and not dead and folded[0].taste.profile()["unplaced"] == 1


def test_the_next_index_version_places_what_the_last_could_not(tmp_path: Path):
    ids, raw, frame = synthetic_catalogue(per_genre=20, artists_per_genre=2)
    old = Index(build_version(tmp_path, ids, raw, COLUMNS, feature_version="t", catalogue=frame, shards=1,
                                        version="v20260101T000000000000Z"))  # fmt: skip
    lookup = Catalogue({NEW: "Rock"})
    rock = int(frame.track_id[frame.genre_top == "Rock"].iloc[0])
    first, _ = fold_batch(
        frame_of(new_event(user_id="u", track_id=rock, type="like"), new_event(user_id="u", track_id=NEW, type="like")),
        {}, old, rules(), half_life_ms=HOUR_MS, lookup=lookup,
    )  # fmt: skip
    taste = Taste.from_bytes(first[0].taste.to_bytes())  # through the state store's format
    assert taste.profile()["unplaced"] == 1 and taste.pos_w == pytest.approx(3.0)
    before = taste.centre("pos").copy()

    new_vector = raw[ids == rock][0] * 0 + 7.0
    more = pd.concat(
        [frame, pd.DataFrame([{"track_id": NEW, "title": "new", "artist_name": "x", "genre_top": "Rock"}])]
    )
    newer = Index(build_version(tmp_path, np.append(ids, NEW), np.vstack([raw, new_vector]), COLUMNS,
                                          feature_version="t", catalogue=more, shards=1,
                                          version="v20260102T000000000000Z"))  # fmt: skip
    second, _ = fold_batch(
        frame_of(new_event(user_id="u", track_id=rock, type="play")), {"u": taste}, newer, rules(),
        half_life_ms=HOUR_MS, lookup=lookup,
    )  # fmt: skip
    after = second[0].taste
    assert after.profile()["unplaced"] == 0 and not after.pending
    assert after.pos_w > 3.0 + 0.3 + 2.9, "the pending like now pulls, weighted by its age"
    centre = after.centre("pos")
    assert np.linalg.norm(centre - 7.0) < np.linalg.norm(before - 7.0), "toward the newly placed track"


def test_the_archive_keeps_catalogued_events_and_says_why_it_rejects_the_rest(index: Index, tmp_path):
    known = int(index.catalogue.ids_of_genre("Jazz")[0])
    events = [
        new_event(user_id="a", track_id=known, type="like"),
        new_event(user_id="a", track_id=NEW, type="play"),
        new_event(user_id="b", track_id=999_999_999, type="play"),
    ]
    pdf = messages_frame([json.dumps(e).encode() for e in events] + [b"\xff not json"])
    pdf["kafka_partition"] = [0, 1, 1, 2]
    root = Path(index.folder).parent
    out = next(archive_rows(str(root), 300.0, 86400.0, Catalogue({NEW: "Folk"}))(iter([pdf])))
    kept = out[out["rejected"].isna()]
    assert sorted(kept["track_id"]) == sorted([known, NEW])
    assert dict(zip(kept["track_id"], kept["genre"], strict=True))[NEW] == "Folk"
    assert dict(zip(kept["track_id"], kept["kafka_partition"], strict=True)) == {known: 0, NEW: 1}
    reasons = list(out["rejected"].dropna())
    assert len(reasons) == 2 and any("999999999 is not in the catalogue" in r for r in reasons)
    assert len(out) == len(pdf), "every message is a row: archived or rejected with its reason"
