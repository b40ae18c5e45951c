# ruff: noqa: T201 - a command-line tool: it prints its table
"""similar: ask the published index what sounds like a track, or play its song radio.

A plain-Python job (no Spark): it opens the index, reads titles from Mongo
``tracks``, and prints a table.
"""

from __future__ import annotations

import argparse

from conf.errors import JobInputError
from conf.settings import Settings
from connectors import mongo_io
from index.reader import Index, IndexError_


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("track_id", type=int)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--radio", action="store_true", help="an ordered station instead of neighbours")
    parser.add_argument("--index-version", help="default: the published version")


def main(settings: Settings, args: argparse.Namespace) -> int:
    try:
        index = Index.open(settings.paths.index_root, args.index_version)
        with mongo_io.connect(settings) as client:
            tracks = mongo_io.database(client, settings)["tracks"]
            meta = {d["_id"]: d for d in tracks.find({}, {"title": 1, "artist_name": 1, "genre_top": 1})}
        if args.radio:
            artist_of = {t: d.get("artist_name") for t, d in meta.items()}
            (rows,) = index.radio([args.track_id], length=args.k, artist_of=artist_of)
        else:
            rows = index.similar(args.track_id, k=args.k)
    except IndexError_ as exc:
        raise JobInputError(str(exc)) from None
    seed = meta.get(args.track_id, {})
    print(
        f"{'radio from' if args.radio else 'like'} {args.track_id}: {seed.get('title')} "  # noqa: T201
        f"by {seed.get('artist_name')} [{seed.get('genre_top')}]  (index {index.version})"
    )
    for n in rows:
        d = meta.get(n.track_id, {})
        print(
            f"  {n.track_id:>8}  {n.score:6.3f}  {str(d.get('genre_top')):<13} "  # noqa: T201
            f"{str(d.get('artist_name')):<22} {str(d.get('title')):<28} {n.reason}"
        )
    return 0
