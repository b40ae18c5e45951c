"""The stream's state layout: bucket keys that spread evenly over the stateful tasks, recorded per checkpoint."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conf.errors import JobInputError
from spark_jobs.streaming.layout import BALANCED, LAYOUT, LAYOUT_FILE, bucket_keys, check_layout, spark_int_hash

pytestmark = pytest.mark.unit

# Spark 4.2's hash() of these int values (SELECT hash(CAST(v AS INT))), the partitioner's hash.
SPARK_HASHES = {0: 933211791, 1: -559580957, 2: 1765031574, 15: -1041903523, 16: 94926449, 100: 751823303,
                12345: -2122148428, -7: -1618159745, 2**31 - 1: 133916647}  # fmt: skip


def test_the_hash_is_sparks():
    assert {v: spark_int_hash(v) for v in SPARK_HASHES} == SPARK_HASHES


def test_the_bucket_numbers_themselves_fell_unevenly_into_two_tasks():
    """Why the layout changed: 16 bucket numbers as keys went 9 and 7 to two tasks, 10, 3 and 3 to three."""
    assert sorted(Counter(spark_int_hash(b) % 2 for b in range(16)).values()) == [7, 9]
    assert sorted(Counter(spark_int_hash(b) % 3 for b in range(16)).values()) == [3, 3, 10]


@pytest.mark.parametrize("buckets", [1, 2, 16, 48, 64])
def test_balanced_keys_give_every_task_count_that_divides_the_buckets_the_same_share(buckets):
    keys = bucket_keys(buckets)
    assert len(set(keys)) == buckets and min(keys) >= 0
    assert [spark_int_hash(k) % buckets for k in keys] == list(range(buckets))
    for tasks in (t for t in range(1, buckets + 1) if buckets % t == 0):
        assert set(Counter(spark_int_hash(k) % tasks for k in keys).values()) == {buckets // tasks}


def test_a_new_checkpoint_is_recorded_balanced_and_an_old_one_keeps_its_keys(tmp_path: Path):
    new = tmp_path / "new"
    assert check_layout(str(new), 16) == bucket_keys(16)
    assert json.loads((new / LAYOUT_FILE).read_text()) == {"layout": BALANCED, "buckets": 16}
    assert check_layout(f"file://{new}", 16) == bucket_keys(16), "the same keys on restart"
    old = tmp_path / "old"
    old.mkdir()
    (old / LAYOUT_FILE).write_text(json.dumps({"layout": LAYOUT, "buckets": 16}))
    assert check_layout(str(old), 16) == list(range(16)), "its state is stored under the bucket numbers"
    assert check_layout("s3a://bucket/checkpoints/recommender", 8) == list(range(8)), "remote: not read here"
    with pytest.raises(JobInputError, match="holds listener state in 16 buckets"):
        check_layout(str(new), 32)
