"""The stateful step's pipelined MapState calls (``spark_jobs.streaming.pipelined``) against Spark's own state server.

One real ``transformWithStateInPandas`` query (RocksDB, as the stream runs it) writes tastes-sized values, and
values past the server's buffers, half with the plain one-call-per-value API and half pipelined, then reads
every key back both ways: the same values, the same absences, the last of two writes of one key in one window.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pyspark.sql import types as T

pytestmark = pytest.mark.spark


def test_pipelined_writes_and_reads_match_the_plain_calls(spark, tmp_path):
    from pyspark.sql.streaming import StatefulProcessor

    key_schema = T.StructType([T.StructField("user_id", T.StringType())])
    value_schema = T.StructType([T.StructField("blob", T.BinaryType())])

    class Both(StatefulProcessor):
        def init(self, handle):
            self.values = handle.getMapState("values", key_schema, value_schema)

        def handleInputRows(self, key, rows, timerValues):  # noqa: N802 - Spark's API
            import hashlib
            import threading

            from spark_jobs.streaming.pipelined import WINDOW, _client, get_many, put_many

            list(rows)
            # 2 KB to 200 KB: a taste, one with a full dedup window, and past any socket buffer
            blobs = {
                f"{key[0]}-{i}": hashlib.sha256(str(i).encode()).digest() * (64 + (i * 997) % 6400) for i in range(600)
            }
            users = list(blobs)
            plain, piped = users[:200], users[200:]
            for user in plain:
                self.values.updateValue((user,), (blobs[user],))
            writes = [((user,), (blobs[user],)) for user in piped]
            writes.insert(WINDOW // 2, ((piped[-1],), (b"overwritten in the same window",)))
            put_many(self.values, writes)
            asked = [*users, "nobody", f"{key[0]}-600"]
            one_by_one = [self.values.getValue((user,)) for user in asked]
            many = get_many(self.values, [(user,) for user in asked])
            try:  # a value that cannot be serialized: the call fails with nothing of its window sent
                put_many(self.values, [((f"{key[0]}-first",), (b"sent?",)), ((f"{key[0]}-bad",), (threading.Lock(),))])
                refused = False
            except Exception:  # noqa: BLE001 - pickle's error type is the pickler's
                refused = True
            after = self.values.getValue((users[0],))  # the next call gets its own answer, not a stray one
            report = {
                "refused_whole": refused
                and after is not None
                and bytes(after[0]) == blobs[users[0]]
                and self.values.getValue((f"{key[0]}-first",)) is None,
                "pipelined": _client(self.values) is not None,  # pyspark 4.2's client, not the fallback
                "same": [None if v is None else bytes(v[0]) for v in one_by_one]
                == [None if v is None else bytes(v[0]) for v in many],
                "right": [bytes(v[0]) for v in many[: len(users)]] == [blobs[u] for u in users],
                "absent": many[len(users) :] == [None, None],
                "largest": max(len(b) for b in blobs.values()),
            }
            yield pd.DataFrame({"bucket": [str(key[0])], "report": [json.dumps(report)]})

        def close(self):
            pass

    source = tmp_path / "in"
    source.mkdir()
    (source / "a.json").write_text('{"b": "0"}\n{"b": "1"}\n')
    query = (
        spark.readStream.schema("b string")
        .json(str(source))
        .groupBy("b")
        .transformWithStateInPandas(Both(), outputStructType="bucket string, report string", outputMode="Update",
                                    timeMode="None")  # fmt: skip
        .writeStream.format("memory")
        .queryName("pipelined_state")
        .outputMode("update")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    reports = {r["bucket"]: json.loads(r["report"]) for r in spark.sql("select * from pipelined_state").collect()}
    assert set(reports) == {"0", "1"}
    for report in reports.values():
        assert report == {
            "refused_whole": True,  # and the state client still answers afterwards
            "pipelined": True,
            "same": True,
            "right": True,
            "absent": True,
            "largest": report["largest"],
        }
        assert report["largest"] > 128 * 1024
