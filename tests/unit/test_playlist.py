"""Playlists from a seed, a mood and a taste: their length, their flow, no artist twice in a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from events.contract import InvalidEvent, check_event, format_ts
from events.producer import new_event
from index.reader import Index
from recommend.playlist import PlaylistError, flow, from_mood, from_seed, from_taste, moods_from_index
from recommend.taste import Taste
from tests.lookups import point_of, raw_of

pytestmark = pytest.mark.unit
HOUR_MS = 3600 * 1000


def steps(index: Index, tracks: list[int]) -> float:
    """The mean distance between neighbours of a playlist, in the index space."""
    p = np.stack([point_of(index, t) for t in tracks]).astype(np.float64)
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).mean())


def no_artist_twice_in_a_row(index: Index, tracks: list[int]) -> bool:
    artists = [index.catalogue.get(t).artist for t in tracks]
    return all(a != b for a, b in zip(artists, artists[1:], strict=False))


def test_a_seed_playlist_opens_with_the_seed_and_flows(index):
    artist_of = index.catalogue.artist_of()
    tracks = from_seed(index, 5, length=15, artist_of=artist_of)
    assert tracks[0] == 5 and len(tracks) == 15 and len(set(tracks)) == 15
    assert no_artist_twice_in_a_row(index, tracks)
    genre = index.catalogue.get(5).genre
    assert sum(index.catalogue.get(t).genre == genre for t in tracks) >= 12  # it stays near the seed
    # Ordered to flow: each next track is the nearest allowed one left to the one before it.
    p = {t: point_of(index, t).astype(np.float64) for t in tracks}
    for i in range(1, len(tracks) - 1):
        allowed = [t for t in tracks[i + 1 :] if artist_of[t] != artist_of[tracks[i]]]
        nearest = min(np.linalg.norm(p[t] - p[tracks[i]]) for t in allowed)
        assert np.linalg.norm(p[tracks[i + 1]] - p[tracks[i]]) == nearest


def test_flow_keeps_what_sounds_alike_together(index):
    jazz, rock = index.catalogue.ids_of_genre("Jazz")[::4], index.catalogue.ids_of_genre("Rock")[::4]  # 4 artists each
    mixed = [t for pair in zip(jazz, rock, strict=True) for t in pair]  # Jazz, Rock, Jazz, Rock, ...
    tracks = flow(index, mixed, length=20, artist_of=index.catalogue.artist_of())
    genres = [index.catalogue.get(t).genre for t in tracks]
    assert set(tracks) <= set(mixed) and len(tracks) >= 18  # the last ones may share the artist before them
    assert sum(a != b for a, b in zip(genres, genres[1:], strict=False)) <= 3  # against 19 in the order given
    assert steps(index, tracks) < steps(index, mixed)


def test_flow_keeps_artists_apart_and_stops_rather_than_repeat_one(index):
    artist_of = index.catalogue.artist_of()
    one_artist = [t for t, a in artist_of.items() if a == artist_of[1]][:6]
    assert flow(index, one_artist, length=6, artist_of=artist_of) == one_artist[:1]
    other = next(t for t, a in artist_of.items() if a != artist_of[1])
    three = flow(index, [*one_artist, other], length=6, artist_of=artist_of)
    assert three[:2] == [one_artist[0], other] and len(three) == 3 and three[2] in one_artist[1:]
    assert flow(index, [999_999, *one_artist[:2]], length=5) == one_artist[:2]  # unknown ids left out; no artists known


def test_a_mood_playlist_follows_the_mood(index):
    moods = moods_from_index(index)
    assert set(moods.columns) == {"track_id", "tempo", "energy", "brightness", "noisiness"} and len(moods) == len(index)
    place = moods.set_index("track_id")["energy"].rank(pct=True)
    artist_of = index.catalogue.artist_of()
    loud = from_mood(index, moods, {"energy": 1.0}, length=12, artist_of=artist_of)
    quiet = from_mood(index, moods, {"energy": -1.0}, length=12, artist_of=artist_of)
    assert len(loud) == len(quiet) == 12 and no_artist_twice_in_a_row(index, loud)
    assert place[loud].mean() > 0.75 and place[quiet].mean() < 0.25
    fast_bright = from_mood(index, moods, {"tempo": 1.0, "brightness": 1.0}, length=10, artist_of=artist_of)
    ranks = moods.set_index("track_id")[["tempo", "brightness"]].rank(pct=True)
    assert ranks.loc[fast_bright].mean().min() > 0.6


def test_a_mood_that_cannot_be_met_says_why(index):
    moods = moods_from_index(index)
    with pytest.raises(PlaylistError, match="unknown mood axis happiness"):
        from_mood(index, moods, {"happiness": 1.0}, length=5)
    with pytest.raises(PlaylistError, match="between -1 and 1"):
        from_mood(index, moods, {"energy": 3.0}, length=5)
    with pytest.raises(PlaylistError, match="no tempo"):
        from_mood(index, moods.assign(tempo=np.nan), {"tempo": 0.5}, length=5)
    with pytest.raises(PlaylistError, match="1 to 200 tracks"):
        from_mood(index, moods, {"energy": 0.5}, length=0)
    with pytest.raises(PlaylistError, match="not in the index"):
        from_seed(index, 999_999, length=5)
    missing = pd.DataFrame({"track_id": [999_999], "energy": [1.0]})
    with pytest.raises(PlaylistError, match="no indexed track"):
        from_mood(index, missing, {"energy": 0.5}, length=5)


def test_a_taste_playlist_comes_from_what_the_listener_likes(index):
    taste = Taste()
    jazz = index.catalogue.ids_of_genre("Jazz")[:4]
    for i, t in enumerate(jazz):
        taste.apply("like", t, 1_000 * (i + 1), raw_of(index, t), genre="Jazz", half_life_ms=HOUR_MS)
    tracks = from_taste(index, taste, length=10, artist_of=index.catalogue.artist_of())
    assert len(tracks) == 10 and not set(tracks) & set(jazz)  # what they heard is not offered again
    assert sum(index.catalogue.get(t).genre == "Jazz" for t in tracks) >= 8
    assert no_artist_twice_in_a_row(index, tracks)
    with pytest.raises(PlaylistError, match="no taste"):
        from_taste(index, Taste(), length=10)


def test_a_share_is_a_contract_event_that_pulls_like_a_finished_track():
    now = datetime.now(UTC)
    for shared in ("track", "radio", "playlist:Ab3_x"):
        event = new_event(user_id="u", track_id=3, type="share", shared=shared)
        assert check_event(event, now=now, max_future_s=300)["shared"] == shared
    assert check_event(new_event(user_id="u", track_id=3, type="share"), now=now, max_future_s=300)
    bad = {
        "playlist:": "shared must be track, radio or playlist:<id>",
        "album": "shared must be track, radio or playlist:<id>",
    }
    for shared, reason in bad.items():
        with pytest.raises(InvalidEvent, match=reason):
            check_event(new_event(user_id="u", track_id=3, type="share", shared=shared), now=now, max_future_s=300)
    with pytest.raises(InvalidEvent, match="shared is only for a share event"):
        check_event(new_event(user_id="u", track_id=3, type="like", shared="track"), now=now, max_future_s=300)
    with pytest.raises(InvalidEvent, match="shared must be a string"):
        event = {**new_event(user_id="u", track_id=3, type="share"), "shared": 7}
        check_event(event, now=now, max_future_s=300)
    shared, finished = Taste(), Taste()
    vector = np.linspace(0, 1, 8)
    ts = int((now - timedelta(minutes=1)).timestamp() * 1000)
    shared.apply("share", 3, ts, vector, genre="Rock", half_life_ms=HOUR_MS)
    finished.apply("complete", 3, ts, vector, genre="Rock", half_life_ms=HOUR_MS)
    assert np.array_equal(shared.pos, finished.pos) and shared.pos_w == finished.pos_w
    assert shared.profile()["counts"]["share"] == 1 and shared.positives == []  # not a liked track for reasons
    assert format_ts(now).endswith("Z")
