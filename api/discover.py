"""Answers from the audio and the live taste: similar songs and artists, sonic matches and paths, top songs.

Similar songs start from the seed's neighbours in the published index (a song,
or up to :data:`SEEDS` songs of an album or artist), then follow the caller's
live taste: a neighbour that is also in the stream's latest recommendations for
them (Mongo ``recommendations``, rewritten within a second or two of each play,
skip or like) rises by :data:`TASTE_WEIGHT` times its recommendation score, and
what they skipped through this server since it started, or recently heard
(``profile.recent_tracks``), stays out. An Instant Mix in a player therefore
starts from the seed and keeps following what the listener does.
"""

from __future__ import annotations

from api.browse import entries, song_of
from api.call import Call
from api.context import Context
from api.library import Artist, Song
from api.respond import NOT_FOUND, ApiError, Reply
from connectors import mongo_io

SEEDS = 5
TASTE_WEIGHT = 0.5
NEIGHBOURS = 50  # each seed song's nearest tracks that similar artists are drawn from


def _seeds(ctx: Context, raw: str) -> list[Song]:
    lib = ctx.library.fresh()
    if raw.startswith("al-"):
        album = lib.albums.get(raw)
        return album.songs[:SEEDS] if album else []
    if raw.startswith("ar-"):
        artist = lib.artists.get(raw)
        return artist.songs()[:SEEDS] if artist else []
    return [song_of(ctx, raw)]


def _live(ctx: Context, user: str) -> tuple[dict[int, float], set[int]]:
    """(track -> recommendation score, tracks to leave out) from the stream's latest answer for ``user``."""
    doc = mongo_io.recommendation_of(ctx.db, user, ["items", "profile.recent_tracks"])
    items = doc.get("items") or {}
    scores = dict(zip(items.get("track_id", []), items.get("score", []), strict=False))
    heard = set((doc.get("profile") or {}).get("recent_tracks", [])[-20:])
    return scores, heard | set(ctx.session_skips.get(user, []))


def similar(ctx: Context, user: str, raw: str, count: int) -> list[tuple[Song, float]]:
    seeds = _seeds(ctx, raw)
    if not seeds:
        raise ApiError(NOT_FOUND, f"nothing to start from: {raw[:40]!r}")
    index, lib = ctx.index(), ctx.library
    scores, left_out = _live(ctx, user)
    seed_ids = {s.id for s in seeds}
    best: dict[int, float] = {}
    for seed in seeds:
        if seed.id not in index:
            continue
        # A player shows no reasons, and working them out is most of a query's cost.
        for n in index.similar(seed.id, k=count * 2 + len(left_out) + len(seeds), exclude=seed_ids, reasons=False):
            if n.track_id in seed_ids or n.track_id in left_out or n.track_id not in lib.songs:
                continue
            best[n.track_id] = max(best.get(n.track_id, 0.0), n.score)
    ranked = sorted(best.items(), key=lambda ts: -(ts[1] + TASTE_WEIGHT * scores.get(ts[0], 0.0)))
    return [(lib.songs[t], s) for t, s in ranked[:count]]


def get_similar_songs2(ctx: Context, call: Call) -> Reply:
    found = similar(ctx, call.user, call.need("id"), call.integer("count", 50, lo=1, hi=500))
    return Reply({"similarSongs2": {"song": entries(ctx, [s for s, _ in found])}})


def get_similar_songs(ctx: Context, call: Call) -> Reply:
    found = similar(ctx, call.user, call.need("id"), call.integer("count", 50, lo=1, hi=500))
    return Reply({"similarSongs": {"song": entries(ctx, [s for s, _ in found])}})


def get_sonic_similar_tracks(ctx: Context, call: Call) -> Reply:
    """The seed's nearest tracks by audio alone, with ``similarity`` = 1 / (1 + distance): 1 is the same song."""
    seed = song_of(ctx, call.need("id"))
    index, lib = ctx.index(), ctx.library
    if seed.id not in index:
        raise ApiError(NOT_FOUND, f"song {seed.id} is not analysed yet (no features in the published index)")
    count = call.integer("count", 10, lo=1, hi=500)
    near = index.similar(seed.id, k=count + 10, reasons=False)
    near = [n for n in near if n.track_id in lib.songs][:count]
    return Reply({"sonicMatch": [{"entry": lib.songs[n.track_id].entry(), "similarity": round(float(n.score), 6)}
                                 for n in near]})  # fmt: skip


def find_sonic_path(ctx: Context, call: Call) -> Reply:
    """Songs from the first to the second, each the nearest unused track to the next point of the straight line
    between them in the index space; ``similarity`` is each step's closeness to its point."""
    start, end = song_of(ctx, call.need("startSongId")), song_of(ctx, call.need("endSongId"))
    index, lib = ctx.index(), ctx.library
    for s in (start, end):
        if s.id not in index:
            raise ApiError(NOT_FOUND, f"song {s.id} is not analysed yet (no features in the published index)")
    count = call.integer("count", 25, lo=2, hi=200)
    steps = index.path(start.id, end.id, count - 2, keep=lambda t: t in lib.songs)
    path = [(start, 1.0), *((lib.songs[n.track_id], float(n.score)) for n in steps), (end, 1.0)]
    return Reply({"sonicMatch": [{"entry": s.entry(), "similarity": round(sim, 6)} for s, sim in path]})


def get_top_songs(ctx: Context, call: Call) -> Reply:
    """An artist's songs, the ones the caller's live taste ranks first leading (the catalogue has no charts)."""
    name = call.need("artist")
    count = call.integer("count", 50, lo=1, hi=500)
    lib = ctx.library.fresh()
    songs = [s for s in lib.song_order if s.artist.lower() == name.lower()]
    scores, _ = _live(ctx, call.user)
    songs.sort(key=lambda s: -scores.get(s.id, 0.0))
    return Reply({"topSongs": {"song": entries(ctx, songs[:count])}})


def get_artist_info2(ctx: Context, call: Call) -> Reply:
    return Reply({"artistInfo2": _artist_info(ctx, call)})


def get_artist_info(ctx: Context, call: Call) -> Reply:
    return Reply({"artistInfo": _artist_info(ctx, call)})


def _artist_info(ctx: Context, call: Call) -> dict:
    """No biography or pictures (the server reaches no outside service); ``similarArtist``: the artists whose
    songs sound nearest to this artist's (up to :data:`SEEDS` of them) in the published index, nearest first.
    ``id`` may be an artist's, an album's or a song's (its artist); ``includeNotPresent`` changes nothing (every
    artist Earshot knows is in the library)."""
    lib = ctx.library.fresh()
    artist = _artist_of(ctx, call.need("id"))
    count = call.integer("count", 20, lo=0, hi=100)
    try:
        index = ctx.index()
    except ApiError:  # no index published yet: the artist is known, nothing is similar yet
        return {}
    best: dict[str, float] = {}
    for seed in artist.songs()[:SEEDS]:
        if seed.id not in index:
            continue
        for n in index.similar(seed.id, k=NEIGHBOURS, reasons=False):
            song = lib.songs.get(n.track_id)
            if song is not None and song.artist_id != artist.id and song.artist_id in lib.artists:
                best[song.artist_id] = max(best.get(song.artist_id, 0.0), n.score)
    ranked = sorted(best, key=lambda a: (-best[a], lib.artists[a].name))[:count]
    return {"similarArtist": [lib.artists[a].entry() for a in ranked]}


def _artist_of(ctx: Context, raw: str) -> Artist:
    lib = ctx.library.fresh()
    if raw in lib.artists:
        return lib.artists[raw]
    if raw in lib.albums:
        return lib.artists[lib.albums[raw].artist_id]
    return lib.artists[song_of(ctx, raw).artist_id]
