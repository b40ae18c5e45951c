"""A host's copy of the tastes its Python workers last read or wrote, trusted only while a bucket's epoch holds.

Reading a listener's taste from Spark's state store goes through the JVM's
state server (the reads of a call pipelined, ``pipelined.py``, still about
0.1 ms a taste on busy cores, against a few microseconds here). The stateful step keeps, beside the state store, a copy
of the state bytes of the listeners it has seen in an LMDB file on the host
(shared by the host's Python workers: Spark hands a bucket to whichever worker
is idle), per query and bucket, beside the bucket's *epoch*: a random token the
step writes into the bucket's MapState (under :data:`EPOCH_KEY`, a key no
listener id can be) each time it changes the bucket. A call reads the epoch
(one round trip) and uses the copy only when the epoch is the one recorded
with it; otherwise the bucket's copy starts a new generation (the old entries
are never read again) and the tastes come from the state store. That keeps the
copy exact across what can happen to a batch:

- another host took the bucket in between: it wrote another epoch;
- the task failed, or the batch is replayed from an earlier state version
  (after a kill -9 too): the state store's epoch is the one before, not the
  one recorded here;
- a new checkpoint: its epoch is absent, and an absent epoch never matches.

It assumes one attempt of a bucket's task at a time on a host (Spark's
speculative execution off, its default). Pure Python (no Spark): the stateful
step does the state store's reads and writes; this module only decides which
reads may be skipped.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

# The user ids the event contract lets in are at most 256 characters: this key is none of them.
EPOCH_KEY = "earshot:bucket-epoch:" + "~" * 256
# Room per listener in the file's map. A taste is 2-4 KB and more with a busy dedup window; LMDB keeps a value
# over ~2 KB on whole 4 KB pages of its own, so 4.1 KB takes 8 KB: at 8 KB a listener the map filled before the
# entry count said so. The map is address space, not disk: the file grows with the pages in use.
ENTRY_BYTES = 16 * 1024
MAP_HEADROOM = 64 << 20
START_AGAIN_AT = 0.5  # of the map live: the copy is dropped before a store, while the drop still has room
log = logging.getLogger("earshot.stream")


def new_epoch() -> bytes:
    return os.urandom(16)


def default_path() -> Path:
    return Path(tempfile.gettempdir()) / f"earshot-tastes-{os.getuid()}"


class TasteCache:
    """State bytes per (query, bucket, listener), each under its bucket's generation; at most
    ``max_listeners`` entries and half the map's pages in use (past either, the whole copy is dropped and
    starts again)."""

    def __init__(self, path: Path, max_listeners: int, map_bytes: int | None = None):
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_listeners = max_listeners
        self.map_bytes = map_bytes or max_listeners * ENTRY_BYTES + MAP_HEADROOM
        self._env = self._open()

    def _open(self):
        import lmdb

        return lmdb.open(str(self.path), map_size=self.map_bytes, sync=False, metasync=False, max_dbs=0)

    @staticmethod
    def _bucket_key(where: tuple[str, int]) -> bytes:
        return f"b\0{where[0]}\0{where[1]}".encode()

    @staticmethod
    def _user_key(where: tuple[str, int], user: str) -> bytes:
        # LMDB keys are at most 511 bytes: the id is hashed here and checked in the value.
        import hashlib

        return b"u\0" + hashlib.blake2b(f"{where[0]}\0{where[1]}\0{user}".encode(), digest_size=20).digest()

    def lookup(
        self, where: tuple[str, int], epoch: bytes | None, users: Iterable[str]
    ) -> tuple[dict[str, bytes], int | None]:
        """(the copy's state bytes of ``users`` when ``epoch``, read from the state store, is the bucket's recorded
        one, else nothing; the generation the call's :meth:`store` must use, None: store nothing).

        A copy that cannot be read (a broken or unreadable file) is a miss: the state store answers.
        """
        import lmdb

        try:
            return self._lookup(where, epoch, users)
        except lmdb.Error as exc:
            log.warning("the copy of the tastes at %s could not be read (%s); reading the state store", self.path, exc)
            return {}, None

    def _lookup(self, where, epoch, users) -> tuple[dict[str, bytes], int]:
        with self._env.begin() as txn:
            record = txn.get(self._bucket_key(where))
            recorded, generation = (record[:16], struct.unpack("<Q", record[16:24])[0]) if record else (None, 0)
            if epoch is None or recorded != epoch:
                return {}, generation + 1
            found = {}
            for user in users:
                value = txn.get(self._user_key(where, user))
                if value is None:
                    continue
                gen, n = struct.unpack_from("<QH", value)
                name = bytes(value[10 : 10 + n]).decode()
                if gen == generation and name == user:
                    found[user] = bytes(value[10 + n :])
            return found, generation

    def store(self, where: tuple[str, int], epoch: bytes, generation: int | None, fresh: dict[str, bytes]) -> None:
        """After the call wrote ``epoch`` and ``fresh`` into the state store: record them under ``generation``.

        When that fails the bucket's record keeps its older epoch, which the state store no longer holds: the
        copy of the bucket is simply not used again.
        """
        import lmdb

        if generation is None:
            return
        try:
            self._make_room(len(fresh), sum(len(blob) for blob in fresh.values()))
            with self._env.begin(write=True) as txn:
                for user, blob in fresh.items():
                    name = user.encode()
                    txn.put(self._user_key(where, user), struct.pack("<QH", generation, len(name)) + name + blob)
                txn.put(self._bucket_key(where), epoch + struct.pack("<Q", generation))
        except lmdb.MapFullError:
            self._start_again()
        except lmdb.Error as exc:
            log.warning("the copy of the tastes at %s could not be written (%s)", self.path, exc)

    def _make_room(self, entries: int, value_bytes: int) -> None:
        """Drop the whole copy, in a transaction of its own, when a store of ``entries`` would pass
        ``max_listeners`` or bring the pages in use past :data:`START_AGAIN_AT` of the map (a drop needs free
        pages too: on a full map it fails)."""
        stat = self._env.stat()
        live = (stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]) * stat["psize"]
        incoming = 2 * (value_bytes + 64 * entries)  # values rounded up to whole pages, and their keys
        if stat["entries"] + entries > self.max_listeners or live + incoming > START_AGAIN_AT * self.map_bytes:
            with self._env.begin(write=True) as txn:
                txn.drop(self._env.open_db(), delete=False)

    def _start_again(self) -> None:
        """A full map (one filled by an older version of this file, or a store larger than the room left): a new,
        empty file in its place. A worker that still has the old file open goes on with it, which is safe: a
        copy is only trusted under the epoch that its own writer recorded."""
        import lmdb

        try:
            self._env.close()
            for name in ("data.mdb", "lock.mdb"):
                (self.path / name).unlink(missing_ok=True)
            self._env = self._open()
            log.warning("the copy of the tastes at %s was full: it starts again, empty", self.path)
        except (OSError, lmdb.Error) as exc:
            log.warning("the copy of the tastes at %s was full and could not start again (%s)", self.path, exc)

    def __len__(self) -> int:
        return self._env.stat()["entries"]
