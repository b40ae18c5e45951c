# ruff: noqa: T201 - a command-line tool: it prints what it sent
"""simulate: synthetic listeners who play, finish, skip, like, dislike and share, at a target total rate.

A plain-Python job (no Spark). Each listener has one or two favourite genres of
the published index's catalogue. A listen is a ``play``, then ``complete`` or
``skip`` (a favourite genre is mostly finished, anything else mostly skipped),
sometimes followed by ``like`` or ``dislike``. The next track comes from the
listener's current recommendations in Mongo (``--from-recommendations`` of the
time, as a real app would) or from browsing the catalogue at random. A share of
messages is malformed (each kind the stream must reject) and a share re-sends
an earlier event (the stream must drop it). It prints what it sent.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conf.errors import JobInputError
from conf.settings import Settings
from connectors import kafka_io, mongo_io
from connectors.services import require_kafka, require_mongo
from events.contract import format_ts
from events.producer import ListenProducer, new_event
from index.catalogue import Catalogue
from index.manifest import IndexError_
from index.reader import Index

MALFORMED_KINDS = ("not-json", "missing-field", "wrong-type", "unknown-type", "unknown-track", "future-ts")
RECS_REFRESH_S = 2.0
# The sender wakes at most every TICK_S and sends what has come due since (each event's ts is when it is made):
# a wake-up per event (every 0.5 ms at 2,000/s) cost more CPU than making and sending the events (~50 vs ~22 us).
TICK_S = 0.005


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listeners", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second, all listeners together")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (0: until Ctrl-C)")
    parser.add_argument("--malformed-share", type=float, default=0.01)
    parser.add_argument("--duplicate-share", type=float, default=0.005)
    parser.add_argument("--from-recommendations", type=float, default=0.6)
    parser.add_argument("--prefix", default="sim", help="listener ids are <prefix>-000, <prefix>-001, ...")
    parser.add_argument("--seed", type=int, default=7)


@dataclass
class Listener:
    user_id: str
    favourites: set[str]
    pending: list[str] = field(default_factory=list)  # the rest of the current listen
    track: int | None = None
    recs: list[int] = field(default_factory=list)
    recs_at: float = 0.0


@dataclass
class Report:
    sent: Counter = field(default_factory=Counter)  # by event type
    malformed: Counter = field(default_factory=Counter)
    duplicates: int = 0
    seconds: float = 0.0

    @property
    def valid(self) -> int:
        return sum(self.sent.values())

    @property
    def total(self) -> int:
        return self.valid + sum(self.malformed.values()) + self.duplicates

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "valid": self.valid,
            "by_type": dict(self.sent),
            "malformed": dict(self.malformed),
            "duplicates": self.duplicates,
            "seconds": round(self.seconds, 2),
            "rate": round(self.total / self.seconds, 1) if self.seconds else 0.0,
        }


class Simulator:
    def __init__(
        self,
        settings: Settings,
        catalogue: Catalogue,
        *,
        listeners: int,
        malformed_share: float = 0.01,
        duplicate_share: float = 0.005,
        from_recommendations: float = 0.6,
        prefix: str = "sim",
        seed: int = 7,
    ):
        self.settings = settings
        self.catalogue = catalogue
        self.rng = random.Random(seed)
        genres = [g for g in catalogue.genres() if catalogue.ids_of_genre(g)]
        if not genres:
            raise JobInputError("the catalogue of the published index is empty")
        self.ids = sorted(catalogue.tracks)
        self.listeners = [
            Listener(f"{prefix}-{i:03d}", set(self.rng.sample(genres, k=min(len(genres), 1 + (i % 2)))))
            for i in range(listeners)
        ]
        self.malformed_share = malformed_share
        self.duplicate_share = duplicate_share
        self.from_recommendations = from_recommendations
        self.report = Report()
        self._recent: list[dict] = []
        self._client = mongo_io.connect(settings)
        self._db = mongo_io.database(self._client, settings)

    def likes(self, listener: Listener, track_id: int) -> bool:
        track = self.catalogue.get(track_id)
        return track is not None and track.genre in listener.favourites

    def _next_track(self, listener: Listener) -> int:
        now = time.monotonic()
        if self.rng.random() < self.from_recommendations:
            if now - listener.recs_at > RECS_REFRESH_S:
                doc = self._db["recommendations"].find_one({"_id": listener.user_id}, {"items.track_id": 1})
                listener.recs = list(((doc or {}).get("items") or {}).get("track_id", []))
                listener.recs_at = now
            if listener.recs:
                return self.rng.choice(listener.recs[:10])
        return self.rng.choice(self.ids)

    def _plan(self, listener: Listener) -> None:
        """Choose a track and what this listener will do with it."""
        track = self._next_track(listener)
        listener.track = track
        if self.likes(listener, track):
            steps = ["play", "complete" if self.rng.random() < 0.85 else "skip"]
            if steps[1] == "complete" and self.rng.random() < 0.3:
                steps.append("like")
                if self.rng.random() < 0.1:  # now and then a liked track is passed on to a friend
                    steps.append("share")
        else:
            steps = ["play", "skip" if self.rng.random() < 0.85 else "complete"]
            if self.rng.random() < 0.1:
                steps.append("dislike")
        listener.pending = steps

    def step(self, producer: ListenProducer) -> None:
        """Send one message: a listener's next action, a malformed message, or a duplicate."""
        roll = self.rng.random()
        if roll < self.malformed_share:
            kind = self.rng.choice(MALFORMED_KINDS)
            producer.send_raw(self.rng.choice(self.listeners).user_id, self.malformed(kind))
            self.report.malformed[kind] += 1
            return
        if roll < self.malformed_share + self.duplicate_share and self._recent:
            event = self.rng.choice(self._recent)
            producer.send_raw(event["user_id"], json.dumps(event).encode("utf-8"))
            self.report.duplicates += 1
            return
        listener = self.rng.choice(self.listeners)
        if not listener.pending:
            self._plan(listener)
        kind = listener.pending.pop(0)
        shared = "track" if kind == "share" else None
        event = new_event(
            user_id=listener.user_id, track_id=listener.track, type=kind, client="simulator", shared=shared
        )
        producer.send(event)
        self.report.sent[kind] += 1
        self._recent = (self._recent + [event])[-200:]

    def malformed(self, kind: str) -> bytes:
        base = new_event(
            user_id=self.rng.choice(self.listeners).user_id, track_id=self.rng.choice(self.ids), type="play"
        )
        if kind == "not-json":
            return b"{this is not json"
        if kind == "missing-field":
            base.pop("track_id")
        elif kind == "wrong-type":
            base["track_id"] = str(base["track_id"])
        elif kind == "unknown-type":
            base["type"] = "rewind"
        elif kind == "unknown-track":
            base["track_id"] = max(self.ids) + 1_000_000
        elif kind == "future-ts":
            base["ts"] = format_ts(datetime.now(UTC) + timedelta(days=2))
        return json.dumps(base).encode("utf-8")

    def run(self, *, rate: float, duration: float, stop=lambda: False, producer_class=ListenProducer) -> Report:
        """Send at ``rate`` messages per second for ``duration`` seconds (0: until ``stop()``).

        ``producer_class``: anything built and used like :class:`ListenProducer` (``bench.freshness``
        passes a librdkafka one, so the load generator leaves the cores to the stream it measures).
        """
        started = time.monotonic()
        sent = 0
        with producer_class(
            self.settings.kafka.bootstrap_servers,
            topic=self.settings.kafka.listens_topic,
            max_future_s=self.settings.stream.max_future_seconds,
        ) as producer:
            while not stop():
                elapsed = time.monotonic() - started
                if duration and elapsed >= duration:
                    break
                due = int(elapsed * rate) + 1
                while sent < due:
                    self.step(producer)
                    sent += 1
                time.sleep(min(0.01, max(TICK_S, (sent / rate) - (time.monotonic() - started))))
        self.report.seconds = time.monotonic() - started
        return self.report

    def close(self) -> None:
        self._client.close()


def load_catalogue(settings: Settings) -> Catalogue:
    try:
        return Index.open(Path(settings.paths.index_root)).catalogue
    except IndexError_ as exc:
        raise JobInputError(str(exc)) from None


def main(settings: Settings, args: argparse.Namespace) -> int:
    if args.rate <= 0 or args.listeners < 1:
        raise JobInputError("--rate must be > 0 and --listeners >= 1")
    require_kafka(settings)
    require_mongo(settings)
    kafka_io.ensure_topic(settings, settings.kafka.listens_topic)  # the stream may not have run yet
    sim = Simulator(
        settings,
        load_catalogue(settings),
        listeners=args.listeners,
        malformed_share=args.malformed_share,
        duplicate_share=args.duplicate_share,
        from_recommendations=args.from_recommendations,
        prefix=args.prefix,
        seed=args.seed,
    )
    how_long = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
    print(
        f"simulate: {args.listeners} listeners at {args.rate:g} events/s {how_long} into "
        f"{settings.kafka.listens_topic}",
        flush=True,
    )
    try:
        report = sim.run(rate=args.rate, duration=args.duration)
    except KeyboardInterrupt:
        report = sim.report
    finally:
        sim.close()
    print(json.dumps(report.as_dict()))
    return 0
