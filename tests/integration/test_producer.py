"""The producer helper against the real broker: keyed by user, JSON values, nothing sent when invalid."""

from __future__ import annotations

import itertools
import json
import os
import uuid

import pytest

from connectors.kafka_io import ensure_topic
from events.contract import InvalidEvent
from events.producer import ListenProducer, new_event

pytestmark = pytest.mark.kafka


def test_valid_events_arrive_keyed_by_user_and_invalid_ones_are_never_sent(stack):
    from kafka import KafkaConsumer, TopicPartition

    topic = f"test.listens.{uuid.uuid4().hex[:8]}"
    ensure_topic(stack, topic, partitions=2)
    sent = [new_event(user_id=f"u{i % 2}", track_id=10 + i, type="play") for i in range(4)]
    with ListenProducer(stack.kafka.bootstrap_servers, topic=topic) as producer:
        for e in sent:
            producer.send(e)
        with pytest.raises(InvalidEvent, match="unknown type"):
            producer.send({**new_event(user_id="u9", track_id=1, type="play"), "type": "love"})
    consumer = KafkaConsumer(
        topic, bootstrap_servers=stack.kafka.bootstrap_servers, auto_offset_reset="earliest", consumer_timeout_ms=15000
    )
    got = [(m.key.decode(), json.loads(m.value)) for m in itertools.islice(consumer, len(sent))]
    # Nothing else is in the topic: its partitions end where the four messages do.
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.close()
    assert sum(ends.values()) == len(sent)
    assert sorted(e["event_id"] for _, e in got) == sorted(e["event_id"] for e in sent)
    assert all(key == e["user_id"] for key, e in got)
    assert {key for key, _ in got} == {"u0", "u1"}


def test_the_dashboard_creates_a_listens_topic_nothing_has_created_yet(stack):
    """The dashboard may send a listener's Like before the stream has ever run on this broker (which creates no
    topic by itself): the topic is created, and the Like is stored, not refused after the metadata timeout."""
    from kafka import KafkaConsumer

    from conf.settings import load_settings
    from dashboard import data

    topic = f"test.listens.new.{uuid.uuid4().hex[:8]}"
    settings = load_settings({**os.environ, "EARSHOT__KAFKA__LISTENS_TOPIC": topic})
    sent = data.send_event(settings, "dana", 7, "like")
    assert sent.ok, sent.message
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap_servers, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)  # fmt: skip
    events = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert [(e["user_id"], e["track_id"], e["type"], e["client"]) for e in events] == [("dana", 7, "like", "dashboard")]
