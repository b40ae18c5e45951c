"""Playlists in a player: the listener's own (the dashboard's, Mongo ``playlists``), two that the stream
keeps: "For you" (the live recommendations, read-only, changing as they listen) and "Your mix" (the
``playlists`` job's, when it has run), and the library's own (its ``.m3u`` files, read-only and public: every
listener sees them, owned by "library")."""

from __future__ import annotations

from datetime import datetime

from api.browse import entries
from api.call import Call, song_id
from api.context import Context
from api.marks import when
from api.respond import MISSING, NOT_AUTHORISED, NOT_FOUND, ApiError, Reply
from connectors import mongo_io
from connectors import playlists as store

FOR_YOU = "for-you"


def _when(value) -> str | None:
    return when(value) if isinstance(value, datetime) else None


def _summary(ctx: Context, call: Call, doc: dict, *, read_only: bool = False) -> dict:
    lib = ctx.library.fresh()
    songs = [lib.songs[t] for t in doc.get("track_ids", []) if t in lib.songs]
    return {
        "id": doc["_id"],
        "name": doc.get("name", ""),
        "owner": doc.get("owner") or (store.LIBRARY if store.is_library(doc) else call.user),
        "public": bool(doc.get("public")),
        "readonly": read_only,
        "songCount": len(songs),
        "duration": sum(s.duration or 0 for s in songs),
        "created": _when(doc.get("created_at")),
        "changed": _when(doc.get("updated_at")),
        "coverArt": songs[0].album_id if songs else None,
    }, songs


def _for_you(ctx: Context, user: str) -> dict:
    doc = mongo_io.recommendation_of(ctx.db, user, ["items.track_id", "written_at"])
    written = doc.get("written_at")
    tracks = (doc.get("items") or {}).get("track_id", [])
    return {"_id": FOR_YOU, "name": "For you", "owner": user, "track_ids": tracks, "created_at": written,
            "updated_at": written}  # fmt: skip


def _own(ctx: Context, call: Call, playlist_id: str) -> dict:
    if playlist_id == FOR_YOU:
        return _for_you(ctx, call.user)
    doc = store.get(ctx.db, playlist_id)
    if doc is None:
        raise ApiError(NOT_FOUND, "playlist not found")
    if doc.get("owner") != call.user and not store.is_library(doc):
        raise ApiError(NOT_AUTHORISED, "this playlist belongs to another listener")
    return doc


def get_playlists(ctx: Context, call: Call) -> Reply:
    docs = [(_for_you(ctx, call.user), True)] + [(d, d["_id"] == store.mix_id(call.user))
                                                  for d in store.list_for(ctx.db, call.user)]  # fmt: skip
    docs += [(d, True) for d in store.library(ctx.db)]
    return Reply({"playlists": {"playlist": [_summary(ctx, call, d, read_only=ro)[0] for d, ro in docs]}})


def get_playlist(ctx: Context, call: Call) -> Reply:
    playlist_id = call.need("id")
    doc = _own(ctx, call, playlist_id)
    read_only = playlist_id in (FOR_YOU, store.mix_id(call.user)) or store.is_library(doc)
    summary, songs = _summary(ctx, call, doc, read_only=read_only)
    return Reply({"playlist": {**summary, "entry": entries(ctx, songs)}})


def _writable(ctx: Context, call: Call, playlist_id: str) -> dict:
    if playlist_id in (FOR_YOU, store.mix_id(call.user)):
        raise ApiError(NOT_AUTHORISED, "this playlist is made by Earshot and cannot be changed; save a copy")
    doc = _own(ctx, call, playlist_id)
    if store.is_library(doc):
        raise ApiError(NOT_AUTHORISED, "this playlist is a file of the library: change the file, or save a copy")
    return doc


def create_playlist(ctx: Context, call: Call) -> Reply:
    songs = [song_id(s) for s in call.many("songId")]
    existing = call.one("playlistId")
    try:
        if existing:
            _writable(ctx, call, existing)
            store.set_tracks(ctx.db, existing, owner=call.user, track_ids=songs)
            playlist_id = existing
        else:
            name = call.one("name")
            if not name:
                raise ApiError(MISSING, "required parameter is missing: name or playlistId")
            source = {"kind": "subsonic", "client": call.client}
            playlist_id = store.create(ctx.db, owner=call.user, name=name, track_ids=songs, source=source,
                                       allow_empty=True)  # fmt: skip
    except store.PlaylistStoreError as exc:
        raise ApiError(MISSING, str(exc)) from exc
    call.params["id"] = [playlist_id]
    return get_playlist(ctx, call)


def update_playlist(ctx: Context, call: Call) -> Reply:
    playlist_id = call.need("playlistId")
    doc = _writable(ctx, call, playlist_id)
    tracks = list(doc.get("track_ids", []))
    try:
        remove = {int(i) for i in call.many("songIndexToRemove")}
    except ValueError:
        raise ApiError(MISSING, "songIndexToRemove must be integers") from None
    tracks = [t for i, t in enumerate(tracks) if i not in remove] + [song_id(s) for s in call.many("songIdToAdd")]
    try:
        if call.one("name"):
            store.rename(ctx.db, playlist_id, owner=call.user, name=call.need("name"))
        store.set_tracks(ctx.db, playlist_id, owner=call.user, track_ids=tracks)
    except store.PlaylistStoreError as exc:
        raise ApiError(MISSING, str(exc)) from exc
    return Reply()


def delete_playlist(ctx: Context, call: Call) -> Reply:
    playlist_id = call.need("id")
    _writable(ctx, call, playlist_id)
    store.delete(ctx.db, playlist_id, owner=call.user)
    return Reply()
