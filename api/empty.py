"""Calls for what Earshot does not keep: podcasts, internet radio, bookmarks, shares, videos, chat, lyrics and
album notes from the web (the server reaches no outside service).

Players ask for these when they start or open a page (Symfonium, DSub, Tempo, Feishin...); an unknown call is
error 70 and some show it as a failure. Each answers the way the spec allows for "nothing here": its element,
empty. The info calls check the id they are given, so a wrong id is still "not found".
"""

from __future__ import annotations

from api.call import Call, song_id
from api.context import Context
from api.respond import NOT_FOUND, ApiError, Reply

NOTHING = {  # call -> the element it answers with
    "getPodcasts": "podcasts",
    "getNewestPodcasts": "newestPodcasts",
    "getInternetRadioStations": "internetRadioStations",
    "getBookmarks": "bookmarks",
    "getShares": "shares",
    "getVideos": "videos",
    "getChatMessages": "chatMessages",
    "getLyrics": "lyrics",
}
INFO = {"getAlbumInfo": "albumInfo", "getAlbumInfo2": "albumInfo"}  # an artist's: api.discover, similar artists


def nothing(element: str):
    def handler(ctx: Context, call: Call) -> Reply:
        return Reply({element: {}})

    return handler


def info(element: str):
    """An album's notes: none, once the id (an artist, album or song) is known."""

    def handler(ctx: Context, call: Call) -> Reply:
        lib, item = ctx.library.fresh(), call.need("id")
        if item not in lib.artists and item not in lib.albums:
            try:
                known = song_id(item) in lib.songs
            except ApiError:
                known = False
            if not known:
                raise ApiError(NOT_FOUND, f"no artist, album or song {item[:40]!r}")
        return Reply({element: {}})

    return handler


HANDLERS = {**{call: nothing(e) for call, e in NOTHING.items()}, **{call: info(e) for call, e in INFO.items()}}
