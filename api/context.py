"""What the server's handlers share: settings, the serving store, the library, the index, the event producer."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api import credentials
from api.library import FIELDS, Library
from api.listening import Planned
from api.marks import Marks
from api.respond import GENERIC, ApiError
from conf.settings import Settings
from connectors import mongo_io
from events.contract import format_ts
from index import store
from index.reader import Index, IndexError_

INDEX_RECHECK_S = 2.0
SEND_TIMEOUT_S = 10.0
log = logging.getLogger("earshot.api")


@dataclass
class Context:
    settings: Settings
    client: Any = None
    _producer: Any = None
    _index: Index | None = None
    _index_checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    library: Library | None = None
    marks: Marks | None = None  # each listener's stars and ratings, for every entry the server answers with
    secret: bytes = b""
    now_playing: dict[str, dict] = field(default_factory=dict)  # user -> {track_id, started_ms, client}
    session_skips: dict[str, list[int]] = field(default_factory=dict)  # user -> tracks skipped since the server started

    @classmethod
    def open(cls, settings: Settings) -> Context:
        client = mongo_io.connect(settings)
        ctx = cls(settings=settings, client=client, secret=credentials.server_secret(settings.paths.state_root))
        ctx.library = Library(lambda: mongo_io.catalogue_documents(ctx.db, FIELDS), settings.paths.library_root)
        ctx.marks = Marks(lambda: ctx.db)
        return ctx

    @property
    def db(self):
        return mongo_io.database(self.client, self.settings)

    def index(self) -> Index:
        """The published version, re-resolved every INDEX_RECHECK_S: a new build-index shows without a restart."""
        now = time.monotonic()
        with self._lock:
            if self._index is not None and now - self._index_checked < INDEX_RECHECK_S:
                return self._index
            self._index_checked = now
            try:
                folder = store.resolve(Path(self.settings.paths.index_root), None)
                if self._index is None or self._index.version != folder.name:
                    self._index = Index(folder)
            except IndexError_ as exc:
                if self._index is None:
                    raise ApiError(GENERIC, f"no similarity index is published yet ({exc})") from exc
            return self._index

    def producer(self):
        with self._lock:
            if self._producer is None:
                from connectors import kafka_io
                from events.producer import ListenProducer

                kafka_io.ensure_topic_once(self.settings, self.settings.kafka.listens_topic)
                self._producer = ListenProducer(self.settings.kafka.bootstrap_servers,
                                                topic=self.settings.kafka.listens_topic,
                                                max_block_ms=int(SEND_TIMEOUT_S * 1000))  # fmt: skip
            return self._producer

    def send(self, user: str, planned: Planned, *, client: str | None) -> None:
        """Send one event and wait for the broker's acknowledgement: a call answers ok only once it is stored."""
        from datetime import UTC, datetime

        event = {
            "event_id": planned.event_id,
            "user_id": user,
            "track_id": planned.track_id,
            "type": planned.type,
            "ts": format_ts(datetime.fromtimestamp(planned.at_ms / 1000, UTC)),
            "context": "subsonic",
        }
        if planned.position_ms is not None:
            event["position_ms"] = max(0, int(planned.position_ms))
        if client:
            event["client"] = client[:256]
        try:
            self.producer().send(event).get(timeout=SEND_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the client must hear that it was not stored, and may retry
            log.warning("event %s not sent: %s", planned.event_id, exc)
            with self._lock:
                broken, self._producer = self._producer, None  # a fresh connection at the next call
            if broken is not None:
                threading.Thread(target=broken.close, daemon=True).start()
            raise ApiError(GENERIC, f"the listening event could not be stored (the broker did not answer: {exc}); "
                                    "retry the call") from exc  # fmt: skip
        if planned.type == "skip":
            skips = self.session_skips.setdefault(user, [])
            skips.append(planned.track_id)
            del skips[:-200]

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
        if self.client is not None:
            self.client.close()
