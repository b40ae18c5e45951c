"""A load generator's producer: :class:`events.producer.ListenProducer`'s interface on librdkafka.

The freshness benchmark runs its simulated listeners on the same two cores as
the broker, the serving store and the stream it measures. kafka-python spends
about 80 us of CPU per message (0.16 of a core at 2,000 events/s, measured);
confluent-kafka's librdkafka about 5 us. The events and their checks are the
same: only the client that carries them differs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from events.contract import check_event
from events.producer import DEFAULT_MAX_FUTURE_S


class FastListenProducer:
    """Checked events keyed by user id, idempotent delivery (``acks=all``), sent by confluent-kafka."""

    def __init__(self, bootstrap_servers: str, *, topic: str = "listens", max_future_s: float = DEFAULT_MAX_FUTURE_S):
        from confluent_kafka import Producer

        self.topic = topic
        self.max_future_s = max_future_s
        self.failed: list[str] = []
        self._producer = Producer(
            {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
        )

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.failed.append(str(err))

    def send(self, event: dict[str, Any]) -> None:
        check_event(event, now=datetime.now(UTC), max_future_s=self.max_future_s)
        self.send_raw(event["user_id"], json.dumps(event, separators=(",", ":")).encode("utf-8"))

    def send_raw(self, key: str | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, key=key.encode("utf-8") if key is not None else None, value=value,
                    on_delivery=self._delivered,
                )  # fmt: skip
                break
            except BufferError:  # the local queue is full: let librdkafka deliver some first
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float | None = None) -> None:
        left = self._producer.flush(timeout if timeout is not None else 60.0)
        if left or self.failed:
            raise RuntimeError(f"{left} messages undelivered, {len(self.failed)} failed: {self.failed[:3]}")

    def close(self) -> None:
        pass

    def __enter__(self) -> FastListenProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
