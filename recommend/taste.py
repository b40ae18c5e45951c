"""A listener's taste: what they pulled toward and pushed away from, decaying with event time.

The taste lives in raw feature units (518 FMA features + tempo), so it stays
meaningful when a new index version brings a new scaler and projection; the
recommender standardizes and projects it with whatever version is current.

- like, complete, share and play pull toward a track; skip and dislike push away
  (:data:`WEIGHTS`).
- Both sums decay with a half-life in event time. An event older than the
  newest one seen is weighted down by its age instead, so the result does not
  depend on arrival order.
- Recent history (excluded from recommendations), dislikes, the last liked or
  finished tracks (for reasons and cold start), counters per type, a signed
  score per genre, the event ids of a dedup window, and the ids of the history
  messages folded in (``import-history``; each once) are kept beside it.

:meth:`Taste.to_bytes` / :meth:`Taste.from_bytes` are the state store format: a
JSON header and the vectors as float32 (about 2 KB a listener who never
skipped, 4 KB otherwise), so a state store of a million listeners stays a few
GB.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field

import numpy as np

# A share pulls like a finished track: the listener put their name to it (a radio's seed, a playlist's first track).
WEIGHTS: dict[str, float] = {"like": 3.0, "complete": 1.5, "share": 1.5, "play": 0.3, "skip": -1.0, "dislike": -3.0}
HISTORY = 50  # recent tracks excluded from recommendations
DISLIKES = 200
POSITIVES = 20
DEDUP_WINDOW_MS = 15 * 60 * 1000  # event ids remembered for 15 minutes of event time ...
DEDUP_MAX = 5000  # ... and at most this many per listener
FORMAT = 2  # float32 vectors; the pushed sum only when something pushed (1: float64, both always)
PENDING = 100  # events of tracks the index could not place yet, kept to place when a version can
IMPORTS = 5000  # history messages remembered (1,000 listens each), so each is folded once


def event_hash(event_id: str) -> int:
    """A 63-bit hash of an event id (the dedup window stores hashes, not strings)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode("utf-8"), digest_size=8).digest(), "little") >> 1


@dataclass
class Taste:
    dims: int = 0
    # float32 in memory as in the state store: a taste folded in one batch or in many is the same, bit for bit.
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    pos_w: float = 0.0
    neg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    neg_w: float = 0.0
    last_ts_ms: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    genre_score: dict[str, float] = field(default_factory=dict)
    genre_skips: dict[str, int] = field(default_factory=dict)
    recent: list[int] = field(default_factory=list)
    disliked: list[int] = field(default_factory=list)
    positives: list[int] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)  # event id hash -> event time (ms)
    # Events counted but not placed in the vector space (a track catalogued after the index was built,
    # or one without features): how many, and the newest of them as [track_id, type, ts_ms].
    unplaced: int = 0
    pending: list[list] = field(default_factory=list)
    imports: list[int] = field(default_factory=list)  # hashes of the history messages folded in, oldest first

    # ------------------------------------------------------------ events

    def is_duplicate(self, event_id: str) -> bool:
        return event_hash(event_id) in self.seen

    def remember(self, event_id: str, ts_ms: int) -> None:
        self.seen[event_hash(event_id)] = ts_ms

    def forget_old_ids(self) -> None:
        """Keep the ids of the dedup window (newest first when over the cap)."""
        oldest = self.last_ts_ms - DEDUP_WINDOW_MS
        kept = [(h, t) for h, t in self.seen.items() if t >= oldest]
        if len(kept) > DEDUP_MAX:
            kept = sorted(kept, key=lambda ht: ht[1])[-DEDUP_MAX:]
        self.seen = dict(kept)

    def has_imported(self, message_id: str) -> bool:
        return event_hash(message_id) in self.imports

    def imported(self, message_id: str) -> None:
        self.imports = [*self.imports, event_hash(message_id)][-IMPORTS:]

    def apply(
        self,
        kind: str,
        track_id: int,
        ts_ms: int,
        vector: np.ndarray | None,
        *,
        genre: str | None,
        half_life_ms: float,
    ) -> None:
        """Fold one valid event in (``vector`` is None for a track without features)."""
        scale = 1.0
        if ts_ms > self.last_ts_ms:
            if self.last_ts_ms and half_life_ms > 0:
                self._decay(0.5 ** ((ts_ms - self.last_ts_ms) / half_life_ms))
            self.last_ts_ms = ts_ms
        elif half_life_ms > 0:
            scale = 0.5 ** ((self.last_ts_ms - ts_ms) / half_life_ms)
        if vector is not None:
            self._add(vector, WEIGHTS[kind] * scale)
        else:
            self.unplaced += 1
            self.pending = [*self.pending, [int(track_id), kind, int(ts_ms)]][-PENDING:]
        self._count(kind, track_id, genre)

    def apply_many(self, listens: list[tuple], vectors: list[np.ndarray | None], *, half_life_ms: float) -> None:
        """Fold many events at once (an imported history: (track_id, kind, ts_ms, genre) each, oldest first, and
        each track's vector or None): the taste :meth:`apply` gives one by one, up to float rounding, in one
        matrix product instead of one vector operation per event."""
        if not listens:
            return
        newest = max(listen[2] for listen in listens)
        if newest > self.last_ts_ms:
            if self.last_ts_ms and half_life_ms > 0:
                self._decay(0.5 ** ((newest - self.last_ts_ms) / half_life_ms))
            self.last_ts_ms = newest
        placed = [n for n, v in enumerate(vectors) if v is not None]
        if placed:
            ages = np.asarray([self.last_ts_ms - listens[n][2] for n in placed], dtype=np.float64)
            scale = 0.5 ** (ages / half_life_ms) if half_life_ms > 0 else np.ones(len(placed))
            weights = np.asarray([WEIGHTS[listens[n][1]] for n in placed]) * scale
            matrix = np.vstack([np.asarray(vectors[n], np.float64) for n in placed])
            for side in (weights > 0, weights < 0):
                total = float(weights[side].sum())
                if total:
                    self._add((weights[side] @ matrix[side] / total).astype(np.float32), total)
        for (track_id, kind, ts_ms, genre), vector in zip(listens, vectors, strict=True):
            if vector is None:
                self.unplaced += 1
                self.pending = [*self.pending, [int(track_id), kind, int(ts_ms)]][-PENDING:]
            self._count(kind, track_id, genre)

    def _count(self, kind: str, track_id: int, genre: str | None) -> None:
        """What an event adds besides the vectors: counters, genre scores and the lists of tracks."""
        weight = WEIGHTS[kind]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if genre:
            self.genre_score[genre] = round(self.genre_score.get(genre, 0.0) + weight, 6)
            if kind == "skip":
                self.genre_skips[genre] = self.genre_skips.get(genre, 0) + 1
        if kind != "dislike":
            self.recent = _push(self.recent, track_id, HISTORY)
        else:
            self.disliked = _push(self.disliked, track_id, DISLIKES)
        if kind in ("like", "complete"):
            self.positives = _push(self.positives, track_id, POSITIVES)

    def _add(self, vector: np.ndarray, weight: float) -> None:
        """Pull toward (weight > 0) or push away from (weight < 0) one track's raw features."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape[0] != self.dims:  # first vector, or a version with other columns
            zeros = np.zeros(vector.shape[0], np.float32)
            self.dims, self.pos, self.neg, self.pos_w, self.neg_w = vector.shape[0], zeros, zeros.copy(), 0, 0
        step = np.float32(abs(weight))
        if weight > 0:
            self.pos = (self.pos + step * vector).astype(np.float32)
            self.pos_w += weight
        else:
            self.neg = (self.neg + step * vector).astype(np.float32)
            self.neg_w -= weight

    def place_pending(self, vector_of, *, half_life_ms: float) -> int:
        """Fold in the pending events whose track ``vector_of(track_id)`` can now place (None: not yet),
        each weighted by its age against the newest event; returns how many were placed."""
        kept, placed = [], 0
        for track_id, kind, ts_ms in self.pending:
            vector = vector_of(track_id)
            if vector is None:
                kept.append([track_id, kind, ts_ms])
                continue
            age = max(self.last_ts_ms - ts_ms, 0)
            self._add(vector, WEIGHTS[kind] * (0.5 ** (age / half_life_ms) if half_life_ms > 0 else 1.0))
            placed += 1
        self.pending, self.unplaced = kept, max(self.unplaced - placed, 0)
        return placed

    def _decay(self, factor: float) -> None:
        f = np.float32(factor)
        self.pos, self.neg = (self.pos * f).astype(np.float32), (self.neg * f).astype(np.float32)
        self.pos_w, self.neg_w = self.pos_w * factor, self.neg_w * factor

    # ------------------------------------------------------------ reading

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def centre(self, which: str) -> np.ndarray | None:
        """The weighted mean of the pulled (``pos``) or pushed (``neg``) tracks, raw units."""
        total, acc = (self.pos_w, self.pos) if which == "pos" else (self.neg_w, self.neg)
        return acc / total if total > 1e-12 else None

    def negative_share(self) -> float:
        total = self.pos_w + self.neg_w
        return self.neg_w / total if total > 1e-12 else 0.0

    def skip_rate(self) -> float:
        skips = self.counts.get("skip", 0)
        started = max(self.counts.get("play", 0), skips + self.counts.get("complete", 0))
        return round(skips / started, 4) if started else 0.0

    def top_genres(self, n: int = 3) -> list[str]:
        ranked = sorted(((s, g) for g, s in self.genre_score.items() if s > 0), key=lambda sg: (-sg[0], sg[1]))
        return [g for _, g in ranked[:n]]

    def profile(self) -> dict:
        """The listener's profile document body (counts, skip rate, top genres)."""
        return {
            "events": self.events,
            "counts": {k: self.counts.get(k, 0) for k in WEIGHTS},
            "skip_rate": self.skip_rate(),
            "top_genres": self.top_genres(),
            "genre_score": dict(sorted(self.genre_score.items())),
            "skips_by_genre": dict(sorted(self.genre_skips.items())),
            "last_event_at_ms": self.last_ts_ms,
            # Events of tracks the index could not place yet (catalogued after the last build-index, or
            # without features): counted above, not in the vector the recommendations follow.
            "unplaced": self.unplaced,
            "recent_tracks": list(self.recent),  # oldest first: what "recently played" lists show
        }

    # ------------------------------------------------------------ state store format

    def to_bytes(self) -> bytes:
        has_neg = bool(self.neg_w) or bool(np.any(self.neg))
        header = {
            "format": FORMAT,
            "dims": self.dims,
            "neg": has_neg,
            "pos_w": self.pos_w,
            "neg_w": self.neg_w,
            "last_ts_ms": self.last_ts_ms,
            "counts": self.counts,
            "genre_score": self.genre_score,
            "genre_skips": self.genre_skips,
            "recent": self.recent,
            "disliked": self.disliked,
            "positives": self.positives,
            "seen": len(self.seen),
        }
        if self.imports:
            header["imports"] = len(self.imports)
        if self.unplaced or self.pending:
            header["unplaced"], header["pending"] = self.unplaced, self.pending
        head = json.dumps(header, separators=(",", ":")).encode("utf-8")
        vectors = [np.asarray(self.pos, np.float32).reshape(-1)[: self.dims]]
        if has_neg:
            vectors.append(np.asarray(self.neg, np.float32).reshape(-1)[: self.dims])
        arrays = [
            *vectors,
            np.fromiter(self.seen.keys(), dtype=np.int64, count=len(self.seen)),
            np.fromiter(self.seen.values(), dtype=np.int64, count=len(self.seen)),
            np.asarray(self.imports, dtype=np.int64),
        ]
        return struct.pack("<I", len(head)) + head + b"".join(a.tobytes() for a in arrays)

    @classmethod
    def from_bytes(cls, blob: bytes) -> Taste:
        (n,) = struct.unpack_from("<I", blob)
        header = json.loads(blob[4 : 4 + n])
        fmt = header.get("format")
        if fmt not in (1, 2):
            raise ValueError(f"unknown taste state format {fmt!r}")
        dims, seen, imports = header["dims"], header["seen"], header.get("imports", 0)
        width, dtype = (8, np.float64) if fmt == 1 else (4, np.float32)
        n_vectors = 2 if fmt == 1 or header.get("neg") else 1
        body = bytes(blob[4 + n :])
        floats = np.frombuffer(body[: width * dims * n_vectors], dtype=dtype).astype(np.float32)
        ints = np.frombuffer(body[width * dims * n_vectors :], dtype=np.int64)
        neg = floats[dims : 2 * dims].copy() if n_vectors == 2 else np.zeros(dims, np.float32)
        return cls(
            dims=dims,
            pos=floats[:dims].copy(),
            pos_w=header["pos_w"],
            neg=neg,
            neg_w=header["neg_w"],
            last_ts_ms=header["last_ts_ms"],
            counts=header["counts"],
            genre_score=header["genre_score"],
            genre_skips=header["genre_skips"],
            recent=header["recent"],
            disliked=header["disliked"],
            positives=header["positives"],
            seen=dict(zip(ints[:seen].tolist(), ints[seen : 2 * seen].tolist(), strict=True)),
            unplaced=header.get("unplaced", 0),
            pending=header.get("pending", []),
            imports=ints[2 * seen : 2 * seen + imports].tolist(),
        )


def _push(items: list[int], track_id: int, limit: int) -> list[int]:
    """Append ``track_id`` as the newest (moving it if present), keeping the last ``limit``."""
    return [t for t in items if t != track_id][-(limit - 1) :] + [int(track_id)]
