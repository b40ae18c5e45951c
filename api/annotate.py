"""What a player reports: plays, stops, stars and ratings (listening events, ``api.listening``'s rule),
and what a listener keeps: stars, ratings, the play queue."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from api import listening
from api.browse import album_child, song_of
from api.call import Call
from api.context import Context
from api.marks import when
from api.respond import MISSING, NOT_FOUND, ApiError, Reply
from connectors import annotations

log = logging.getLogger("earshot.api")
NO_DURATION_S = 600  # how long a song of unknown length counts as playing
EARLIEST_MS = 946_684_800_000  # 2000-01-01: a scrobble time before it is not milliseconds


def _now_ms() -> int:
    return int(time.time() * 1000)


def scrobble(ctx: Context, call: Call) -> Reply:
    """One listening event per ``id`` (with its ``time``, when given). A batch (an app's offline queue, sent when
    it is back) goes on past a song that is no longer in the library, as other Subsonic servers do: its plays are
    stored, and the app does not retry the batch for ever; a call whose every song is unknown is error 70."""
    ids = call.many("id")
    if not ids:
        raise ApiError(MISSING, "required parameter is missing: id")
    times = call.many("time")
    submission = call.flag("submission", True)
    now = _now_ms()
    unknown: list[ApiError] = []
    for i, raw in enumerate(ids):
        try:
            song = song_of(ctx, raw)
        except ApiError as exc:
            if exc.code != NOT_FOUND:
                raise
            unknown.append(exc)
            continue
        try:
            at = int(times[i]) if i < len(times) else now
        except ValueError:
            at = -1
        if not EARLIEST_MS <= at <= now + 86_400_000:
            raise ApiError(MISSING, f"time must be milliseconds since the epoch, got {times[i][:40]!r}")
        if not submission:
            ctx.now_playing[call.user] = {"track_id": song.id, "started_ms": at, "client": call.client}
        # A retry without ``time`` falls in the same second, so it is the same event.
        planned = listening.from_scrobble(call.user, song.id, submission=submission,
                                          at_ms=at if i < len(times) else (at // 1000) * 1000)  # fmt: skip
        ctx.send(call.user, planned, client=call.client)
    if len(unknown) == len(ids):
        raise unknown[0]
    if unknown:
        log.warning("scrobble of %s: %d of %d songs passed over (%s)", call.user, len(unknown), len(ids),
                    "; ".join(e.message for e in unknown[:3]))  # fmt: skip
    return Reply()


def get_now_playing(ctx: Context, call: Call) -> Reply:
    """What listeners are playing through this server: their last "now playing" scrobble or ``reportPlayback``,
    until the song would have ended (a minute's grace) or they stopped it."""
    now, lib, playing = _now_ms(), ctx.library.fresh(), []
    for user, at in list(ctx.now_playing.items()):
        song = lib.songs.get(at["track_id"])
        if song is None or now > at["started_ms"] + int((song.duration or NO_DURATION_S) * 1000) + 60_000:
            continue
        playing.append({**song.entry(), "username": user, "minutesAgo": max(0, now - at["started_ms"]) // 60_000,
                        "playerId": 0, "playerName": at.get("client") or ""})  # fmt: skip
    return Reply({"nowPlaying": {"entry": playing}})


def report_playback(ctx: Context, call: Call) -> Reply:
    song = song_of(ctx, call.need("mediaId"))
    if call.one("mediaType", "song") != "song":
        return Reply()  # podcasts are not Earshot's
    state = call.need("state")
    if state not in ("starting", "playing", "paused", "stopped"):
        raise ApiError(MISSING, f"state must be starting, playing, paused or stopped, got {state[:20]!r}")
    position = call.integer("positionMs", 0, lo=0, hi=24 * 3600 * 1000)
    now = _now_ms()
    playing = ctx.now_playing.get(call.user)
    if state == "starting" or not playing or playing["track_id"] != song.id:
        playing = ctx.now_playing[call.user] = {"track_id": song.id, "started_ms": now, "client": call.client}
    playing["position_ms"] = position
    if call.flag("ignoreScrobble"):
        return Reply()
    planned = listening.from_report(call.user, song.id, state=state, position_ms=position, duration_s=song.duration,
                                    started_ms=playing["started_ms"], now_ms=now)  # fmt: skip
    if planned is not None:
        ctx.send(call.user, planned, client=call.client)
    if state == "stopped":
        ctx.now_playing.pop(call.user, None)
    return Reply()


def _starred_items(call: Call) -> list[str]:
    return [*call.many("id"), *call.many("albumId"), *call.many("artistId")]


def star(ctx: Context, call: Call) -> Reply:
    items = _starred_items(call)
    if not items:
        raise ApiError(MISSING, "required parameter is missing: id, albumId or artistId")
    now = _now_ms()
    songs = [song_of(ctx, raw) for raw in call.many("id")]
    annotations.star(ctx.db, call.user, items, on=True)
    ctx.marks.forget(call.user)
    for song in songs:
        ctx.send(call.user, listening.from_star(call.user, song.id, at_ms=now), client=call.client)
    return Reply()


def unstar(ctx: Context, call: Call) -> Reply:
    annotations.star(ctx.db, call.user, _starred_items(call), on=False)
    ctx.marks.forget(call.user)
    return Reply()


def set_rating(ctx: Context, call: Call) -> Reply:
    raw = call.need("id")
    rating = call.integer("rating")
    if not 0 <= rating <= 5:
        raise ApiError(MISSING, f"rating must be 0 to 5, got {rating}")
    planned = None
    if not raw.startswith(("al-", "ar-")):
        song = song_of(ctx, raw)
        planned = listening.from_rating(call.user, song.id, rating=rating, at_ms=_now_ms())
    annotations.rate(ctx.db, call.user, raw, rating)
    ctx.marks.forget(call.user)
    if planned is not None:
        ctx.send(call.user, planned, client=call.client)
    return Reply()


def get_starred2(ctx: Context, call: Call) -> Reply:
    artists, albums, songs = _starred(ctx, call)
    return Reply({"starred2": {"artist": artists, "album": albums, "song": songs}})


def get_starred(ctx: Context, call: Call) -> Reply:
    """:func:`get_starred2` for folder-era clients: the albums as ``Child`` entries."""
    artists, albums, songs = _starred(ctx, call)
    lib = ctx.library.fresh()
    children = [{**album_child(lib.albums[a["id"]]), "starred": a["starred"]} for a in albums]
    return Reply({"starred": {"artist": artists, "album": children, "song": songs}})


def _starred(ctx: Context, call: Call) -> tuple[list[dict], list[dict], list[dict]]:
    lib = ctx.library.fresh()
    stars = {item: when(at) for item, at in annotations.starred(ctx.db, call.user).items()}
    songs = [lib.songs[int(i)].entry(starred=stars[i]) for i in stars if i.isdigit() and int(i) in lib.songs]
    albums = [{**lib.albums[i].entry(), "starred": stars[i]} for i in stars if i in lib.albums]
    artists = [{**lib.artists[i].entry(), "starred": stars[i]} for i in stars if i in lib.artists]
    return artists, albums, songs


def save_play_queue(ctx: Context, call: Call) -> Reply:
    ids = [song_of(ctx, raw).id for raw in call.many("id")]
    current = call.one("current")
    current_id = song_of(ctx, current).id if current else None
    annotations.save_queue(ctx.db, call.user, entries=ids[:1000], current=current_id,
                           position_ms=call.integer("position", 0, lo=0), client=call.client)  # fmt: skip
    return Reply()


def get_play_queue(ctx: Context, call: Call) -> Reply:
    doc = annotations.queue(ctx.db, call.user)
    if not doc:
        return Reply()
    lib = ctx.library.fresh()
    changed = doc["changed"]
    if isinstance(changed, datetime):
        changed = when(changed)
    queue = {"username": call.user, "changed": changed, "changedBy": doc.get("changed_by", ""),
             "position": doc.get("position_ms", 0),
             "current": str(doc["current"]) if doc.get("current") is not None else None,
             "entry": [lib.songs[t].entry() for t in doc.get("entries", []) if t in lib.songs]}  # fmt: skip
    return Reply({"playQueue": queue})
