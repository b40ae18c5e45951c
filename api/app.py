"""Earshot's OpenSubsonic server: one route per call (``/rest/<name>`` and ``/rest/<name>.view``), GET or POST.

Each call goes through the same steps: its parameters (query string, and the
form body of a POST: the ``formPost`` extension) become one :class:`api.call.Call`;
authentication (``api.auth``) names the listener, except for the calls the spec
leaves open; a handler returns a :class:`api.respond.Reply` (or, for audio and
covers, a Starlette response) and :func:`api.respond.encode` writes it as XML,
JSON or JSONP. Errors are values with the protocol's codes; a database or broker
that does not answer is a clear error, never a hang.

Web players served from another origin (a browser-based Subsonic client) may call it: every answer allows any
origin, as other Subsonic servers do. Credentials travel in each call's parameters, never in cookies, so a
page that does not know them can do nothing with the server; audio's ``Content-Range`` is exposed for seeking.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import annotate, browse, discover, empty, media, playlists
from api.auth import authenticate, cached_user
from api.call import Call
from api.context import Context
from api.marks import has_entries, mark
from api.respond import GENERIC, NOT_FOUND, ApiError, Reply, encode, envelope

log = logging.getLogger("earshot.api")
MAX_FORM_BYTES = 1 << 20

Handler = Callable[[Context, Call], "Reply | Response"]
HANDLERS: dict[str, Handler] = {
    "ping": browse.ping,
    "getLicense": browse.get_license,
    "getOpenSubsonicExtensions": browse.get_open_subsonic_extensions,
    "getMusicFolders": browse.get_music_folders,
    "getIndexes": browse.get_indexes,
    "getArtists": browse.get_artists,
    "getArtist": browse.get_artist,
    "getAlbum": browse.get_album,
    "getSong": browse.get_song,
    "getMusicDirectory": browse.get_music_directory,
    "getAlbumList2": browse.get_album_list2,
    "getAlbumList": browse.get_album_list,
    "getGenres": browse.get_genres,
    "getSongsByGenre": browse.get_songs_by_genre,
    "getRandomSongs": browse.get_random_songs,
    "search3": browse.search3,
    "search2": browse.search2,
    "getUser": browse.get_user,
    "getUsers": browse.get_users,
    "tokenInfo": browse.token_info,
    "getScanStatus": browse.get_scan_status,
    "startScan": browse.get_scan_status,  # the batch jobs scan; the server says how many songs it serves
    "stream": media.stream,
    "download": media.download,
    "getCoverArt": media.get_cover_art,
    "scrobble": annotate.scrobble,
    "reportPlayback": annotate.report_playback,
    "getNowPlaying": annotate.get_now_playing,
    "star": annotate.star,
    "unstar": annotate.unstar,
    "setRating": annotate.set_rating,
    "getStarred2": annotate.get_starred2,
    "getStarred": annotate.get_starred,
    "getPlayQueue": annotate.get_play_queue,
    "savePlayQueue": annotate.save_play_queue,
    "getSimilarSongs": discover.get_similar_songs,
    "getSimilarSongs2": discover.get_similar_songs2,
    "getSonicSimilarTracks": discover.get_sonic_similar_tracks,
    "findSonicPath": discover.find_sonic_path,
    "getTopSongs": discover.get_top_songs,
    "getArtistInfo": discover.get_artist_info,
    "getArtistInfo2": discover.get_artist_info2,
    "getPlaylists": playlists.get_playlists,
    "getPlaylist": playlists.get_playlist,
    "createPlaylist": playlists.create_playlist,
    "updatePlaylist": playlists.update_playlist,
    "deletePlaylist": playlists.delete_playlist,
    **empty.HANDLERS,
}
OPEN = {"getOpenSubsonicExtensions"}  # the spec: no authentication
# Calls that read only the in-memory catalogue (no database, no index): once it is loaded they need no thread.
IN_MEMORY = {"ping", "getLicense", "getOpenSubsonicExtensions", "getMusicFolders", "getIndexes", "getArtists",
             "getArtist", "getAlbum", "getMusicDirectory", "getSong", "getGenres", "getSongsByGenre",
             "getRandomSongs", "search3", "search2", "getScanStatus", "startScan", "getAlbumInfo", "getAlbumInfo2",
             *empty.NOTHING}  # fmt: skip


async def parameters(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(GENERIC, "the form is too large")
        from urllib.parse import parse_qsl

        for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
            params.setdefault(key, []).append(value)
    return params


def build_app(ctx: Context) -> Starlette:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"].removesuffix(".view")
        params: dict[str, list[str]] = {}
        try:
            params = await parameters(request)
            handler = HANDLERS.get(name)
            if handler is None:
                raise ApiError(NOT_FOUND, f"unknown call {name[:40]!r}")
            call = Call(params=params, client=(params.get("c") or [None])[0], method=request.method,
                        headers={k.lower(): v for k, v in request.headers.items()})  # fmt: skip
            if name not in OPEN:
                user = cached_user(call)  # a player sends the same credential every call: no thread for it
                call.user = user if user is not None else await run_in_threadpool(authenticate, ctx, call)
            if name in IN_MEMORY and ctx.library.loaded:
                result = handler(ctx, call)  # the catalogue in memory: answered on the event loop
            else:
                result = await run_in_threadpool(handler, ctx, call)
            if isinstance(result, Response):
                return result
            if call.user and has_entries(result.payload):
                await _marked(ctx, call.user, result.payload)
            body = envelope(result.payload)
        except ApiError as exc:
            body = envelope(None, exc)
        except Exception as exc:  # noqa: BLE001 - every call gets an answer in the protocol, said why
            body = envelope(None, ApiError(GENERIC, _plain(exc)))
            log.exception("%s failed", name)
        fmt = (params.get("f") or ["xml"])[0]
        content, media_type = encode(body, fmt, (params.get("callback") or [None])[0])
        return Response(content, media_type=media_type)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        ctx.close()

    routes = [Route("/rest/{name}", endpoint, methods=["GET", "POST"])]
    cors = Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "HEAD"], allow_headers=["*"],
                      expose_headers=["Content-Range", "Accept-Ranges", "Content-Length"], max_age=600)  # fmt: skip
    return Starlette(routes=routes, lifespan=lifespan, middleware=[cors])


async def _marked(ctx: Context, user: str, payload: dict) -> None:
    """The listener's stars and ratings on the reply's entries (:mod:`api.marks`); a database that does not answer
    leaves them off rather than failing a call that needed no database."""
    view = ctx.marks.cached(user)
    if view is None:
        try:
            view = await run_in_threadpool(ctx.marks.load, user)
        except Exception as exc:  # noqa: BLE001 - the reply stands without its marks
            log.warning("stars and ratings of %s not read: %s", user, exc)
            return
    mark(payload, view)


def _plain(exc: Exception) -> str:
    from connectors.mongo_io import is_store_error

    if is_store_error(exc):
        return f"the database did not answer ({type(exc).__name__}); try again"
    return f"{type(exc).__name__}: {exc}"[:300]
