"""Browsing and syncing: the server's identity, folders, artists, albums, songs, genres, lists and search.

The ID3 calls (``getAlbumList2``, ``search3``) and their older folder forms (``getAlbumList``, ``search2``) share
one body each: a folder-era client (DSub, Ultrasonic) gets the same albums as ``Child`` entries."""

from __future__ import annotations

import random
from collections import Counter

from api.call import Call, song_id
from api.context import Context
from api.library import Album, Song
from api.respond import MISSING, NOT_AUTHORISED, NOT_FOUND, ApiError, Reply
from connectors import mongo_io
from index.catalogue import folded

FOLDER = {"id": 1, "name": "Music"}
EXTENSIONS = [
    {"name": "apiKeyAuthentication", "versions": [1]},
    {"name": "formPost", "versions": [1]},
    {"name": "playbackReport", "versions": [1]},
    {"name": "sonicSimilarity", "versions": [1]},
    # No transcodeOffset (a player told so seeks every song, the originals too, by timeOffset), no transcoding
    # (its getTranscodeDecision calls) and no songLyrics (see the README).
]
IGNORED_ARTICLES = ("The ", "A ", "An ")


def ping(ctx: Context, call: Call) -> Reply:
    return Reply()


def get_license(ctx: Context, call: Call) -> Reply:
    return Reply({"license": {"valid": True}})


def get_open_subsonic_extensions(ctx: Context, call: Call) -> Reply:
    return Reply({"openSubsonicExtensions": EXTENSIONS})


def get_music_folders(ctx: Context, call: Call) -> Reply:
    return Reply({"musicFolders": {"musicFolder": [FOLDER]}})


def _index_letter(name: str) -> str:
    for article in IGNORED_ARTICLES:
        if name.startswith(article) and len(name) > len(article):
            name = name[len(article) :]
            break
    first = name[:1].upper()
    return first if first.isalpha() else "#"


def _artist_index(ctx: Context) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for artist in ctx.library.fresh().artist_order:
        groups.setdefault(_index_letter(artist.name), []).append(artist.entry())
    return [{"name": letter, "artist": artists} for letter, artists in sorted(groups.items())]


def get_artists(ctx: Context, call: Call) -> Reply:
    return Reply({"artists": {"ignoredArticles": " ".join(a.strip() for a in IGNORED_ARTICLES),
                              "index": _artist_index(ctx)}})  # fmt: skip


def get_indexes(ctx: Context, call: Call) -> Reply:
    return Reply({"indexes": {"ignoredArticles": " ".join(a.strip() for a in IGNORED_ARTICLES), "lastModified": 0,
                              "index": _artist_index(ctx)}})  # fmt: skip


def get_artist(ctx: Context, call: Call) -> Reply:
    artist = ctx.library.fresh().artists.get(call.need("id"))
    if artist is None:
        raise ApiError(NOT_FOUND, "artist not found")
    return Reply({"artist": {**artist.entry(), "album": [a.entry() for a in artist.albums]}})


def album_of(ctx: Context, album_id: str) -> Album:
    album = ctx.library.fresh().albums.get(album_id)
    if album is None:
        raise ApiError(NOT_FOUND, "album not found")
    return album


def song_of(ctx: Context, raw: str) -> Song:
    song = ctx.library.fresh().songs.get(song_id(raw))
    if song is None:
        raise ApiError(NOT_FOUND, f"song not found: {raw[:40]!r}")
    ctx.library.file_size(song)
    return song


def entries(ctx: Context, songs: list[Song]) -> list[dict]:
    for s in songs:
        ctx.library.file_size(s)
    return [s.entry() for s in songs]


def get_album(ctx: Context, call: Call) -> Reply:
    album = album_of(ctx, call.need("id"))
    entry = album.entry()
    entry["song"] = entries(ctx, album.songs)
    return Reply({"album": entry})


def album_child(album: Album) -> dict:
    """An album as the folder calls' ``Child``: a directory under its artist."""
    return {**album.entry(), "parent": album.artist_id, "title": album.name, "album": album.name}


def get_music_directory(ctx: Context, call: Call) -> Reply:
    """Folder browsing (DSub and other older clients): an artist holds albums, an album holds songs."""
    lib, item = ctx.library.fresh(), call.need("id")
    if item in lib.artists:
        artist = lib.artists[item]
        children = [album_child(a) for a in artist.albums]
        return Reply({"directory": {"id": artist.id, "name": artist.name, "child": children}})
    album = album_of(ctx, item)
    return Reply({"directory": {"id": album.id, "name": album.name, "parent": album.artist_id,
                                "child": entries(ctx, album.songs)}})  # fmt: skip


def get_song(ctx: Context, call: Call) -> Reply:
    return Reply({"song": song_of(ctx, call.need("id")).entry()})


def get_genres(ctx: Context, call: Call) -> Reply:
    lib = ctx.library.fresh()
    songs = Counter(s.genre for s in lib.songs.values() if s.genre)
    albums = Counter(a.entry()["genre"] for a in lib.albums.values())
    genres = [{"value": g, "songCount": n, "albumCount": albums.get(g, 0)} for g, n in sorted(songs.items())]
    return Reply({"genres": {"genre": genres}})


def get_songs_by_genre(ctx: Context, call: Call) -> Reply:
    genre = call.need("genre")
    count, offset = call.integer("count", 10, lo=0, hi=500), call.integer("offset", 0, lo=0)
    songs = [s for s in ctx.library.fresh().song_order if s.genre == genre][offset : offset + count]
    return Reply({"songsByGenre": {"song": entries(ctx, songs)}})


def get_random_songs(ctx: Context, call: Call) -> Reply:
    size = call.integer("size", 10, lo=0, hi=500)
    genre, lo, hi = call.one("genre"), call.integer("fromYear", 0), call.integer("toYear", 10**5)
    any_year = lo == 0 and hi == 10**5

    def fits(s: Song) -> bool:
        return (not genre or s.genre == genre) and (any_year or bool(s.year and lo <= s.year <= hi))

    pool = [s for s in ctx.library.fresh().songs.values() if fits(s)]
    return Reply({"randomSongs": {"song": entries(ctx, random.sample(pool, min(size, len(pool))))}})


def get_album_list2(ctx: Context, call: Call) -> Reply:
    return Reply({"albumList2": {"album": [a.entry() for a in _album_list(ctx, call)]}})


def get_album_list(ctx: Context, call: Call) -> Reply:
    return Reply({"albumList": {"album": [album_child(a) for a in _album_list(ctx, call)]}})


def _album_list(ctx: Context, call: Call) -> list[Album]:
    """The page of albums a list ``type`` asks for (every type the spec names)."""
    from connectors import annotations

    kind = call.need("type")
    size, offset = call.integer("size", 10, lo=0, hi=500), call.integer("offset", 0, lo=0)
    albums = list(ctx.library.fresh().albums.values())
    if kind == "random":
        return random.sample(albums, min(size, len(albums)))
    if kind == "newest":
        albums.sort(key=lambda a: a.entry()["created"] or "", reverse=True)
    elif kind == "alphabeticalByName":
        albums.sort(key=lambda a: a.name.lower())
    elif kind == "alphabeticalByArtist":
        albums.sort(key=lambda a: (a.artist.lower(), a.name.lower()))
    elif kind == "starred":
        stars = annotations.starred(ctx.db, call.user)
        albums = sorted((a for a in albums if a.id in stars), key=lambda a: stars[a.id], reverse=True)
    elif kind == "highest":  # the listener's own ratings of albums, best first
        rated = annotations.ratings(ctx.db, call.user)
        albums = sorted((a for a in albums if rated.get(a.id, 0) > 0), key=lambda a: (-rated[a.id], a.name.lower()))
    elif kind in ("frequent", "recent"):
        albums = _played_albums(ctx, call.user, albums, recent=kind == "recent")
    elif kind == "byGenre":
        genre = call.need("genre")
        albums = [a for a in albums if any(s.genre == genre for s in a.songs)]
    elif kind == "byYear":
        lo, hi = call.integer("fromYear"), call.integer("toYear")
        years = {a.id: a.entry()["year"] for a in albums}
        albums = [a for a in albums if years[a.id] and min(lo, hi) <= years[a.id] <= max(lo, hi)]
        albums.sort(key=lambda a: years[a.id], reverse=lo > hi)
    else:
        raise ApiError(MISSING, f"unknown list type {kind[:40]!r}")
    return albums[offset : offset + size]


def _played_albums(ctx: Context, user: str, albums: list[Album], *, recent: bool) -> list[Album]:
    """Albums by the listener's plays: the stream's profile keeps their recent tracks."""
    doc = mongo_io.recommendation_of(ctx.db, user, ["profile.recent_tracks"])
    recent_tracks = (doc.get("profile") or {}).get("recent_tracks") or []
    lib = ctx.library
    order = [lib.songs[t].album_id for t in reversed(recent_tracks) if t in lib.songs]
    counts = Counter(order)
    ranked = list(dict.fromkeys(order)) if recent else [a for a, _ in counts.most_common()]
    return [lib.albums[a] for a in ranked if a in lib.albums]


def search3(ctx: Context, call: Call) -> Reply:
    """Artists, albums and songs whose names hold every word of ``query``, without case or accents ("bjork" finds
    Björk: :func:`index.catalogue.folded`); an empty query (Symfonium's ``""``) matches everything, so a client can
    sync the whole library page by page."""
    artists, albums, songs = _search(ctx, call)
    return Reply({"searchResult3": {"artist": [a.entry() for a in artists], "album": [a.entry() for a in albums],
                                    "song": entries(ctx, songs)}})  # fmt: skip


def search2(ctx: Context, call: Call) -> Reply:
    """:func:`search3` for folder-era clients: the albums as ``Child`` entries."""
    artists, albums, songs = _search(ctx, call)
    return Reply({"searchResult2": {"artist": [a.entry() for a in artists], "album": [album_child(a) for a in albums],
                                    "song": entries(ctx, songs)}})  # fmt: skip


def _search(ctx: Context, call: Call) -> tuple[list, list[Album], list[Song]]:
    lib = ctx.library.fresh()
    words = [w for w in folded((call.one("query") or "").strip().strip('"')).split() if w != "*"]

    def page(items: list, prefix: str, default: int) -> list:
        count = call.integer(f"{prefix}Count", default, lo=0, hi=10_000)
        offset = call.integer(f"{prefix}Offset", 0, lo=0)
        return items[offset : offset + count]

    artists, albums, songs = lib.artist_order, lib.album_order, lib.song_order
    if words:
        artists = [a for a in artists if all(w in a.searched for w in words)]
        albums = [a for a in albums if all(w in a.searched for w in words)]
        songs = [s for s in songs if all(w in s.searched for w in words)]
    return page(artists, "artist", 20), page(albums, "album", 20), page(songs, "song", 20)


def _user(name: str) -> dict:
    return {"username": name, "scrobblingEnabled": True, "adminRole": False, "settingsRole": False,
            "downloadRole": True, "uploadRole": False, "playlistRole": True, "coverArtRole": False,
            "commentRole": False, "podcastRole": False, "streamRole": True, "jukeboxRole": False,
            "shareRole": False, "videoConversionRole": False, "folder": [1]}  # fmt: skip


def get_user(ctx: Context, call: Call) -> Reply:
    name = call.one("username") or call.user
    if name.casefold() != call.user.casefold():  # a player asks with the name as typed at sign-in
        raise ApiError(NOT_AUTHORISED, "a listener can read only their own account")
    return Reply({"user": _user(call.user)})


def get_users(ctx: Context, call: Call) -> Reply:
    """Listeners are not administrators (accounts are managed with ``./spark-submit.sh user``): a listener sees
    their own account, as in Navidrome."""
    return Reply({"users": {"user": [_user(call.user)]}})


def token_info(ctx: Context, call: Call) -> Reply:
    """The ``apiKeyAuthentication`` extension's call: whose key this is (an unknown key is error 44 before here)."""
    return Reply({"tokenInfo": {"username": call.user}})


def get_scan_status(ctx: Context, call: Call) -> Reply:
    """Earshot's library is scanned by its batch jobs (``ingest``, ``extract``), not by the server: never scanning
    here; ``count`` is the songs the server serves (a new ingest shows within a minute on its own)."""
    return Reply({"scanStatus": {"scanning": False, "count": len(ctx.library.fresh().songs)}})
