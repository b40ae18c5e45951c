"""Many MapState calls per wait: the stateful step's taste writes and reads, pipelined to the state server.

Spark 4.2's Python ``MapState`` makes one synchronous round trip to the JVM's
state server per call: serialize, send, wait for that thread to be scheduled,
read its answer. On busy cores most of a call is the wait, and a micro-batch
of 12,000 listeners makes that many calls. The server reads its requests one
after another from one socket (each read in full) and answers each in order,
so a client may send a window of requests and then read the window's answers:
the same requests in the same order, so the same state and the same errors,
with one wait per window instead of one per call.

The windows stay small enough that neither side can block the other: writes
send up to :data:`WINDOW` values (each answer is a few bytes), reads send up
to :data:`READ_WINDOW` keys (at most ~300 bytes each, well inside a socket's
buffer) before reading their answers, however large the values.

This uses the internals of pyspark 4.2's state client (pinned in
``pyproject.toml``); where they are not as expected, each call is the plain
``updateValue`` / ``getValue``. A failed request raises as the plain call would.
"""

from __future__ import annotations

import struct
from typing import Any

import pyspark.sql.streaming.proto.StateMessage_pb2 as sm
from pyspark.errors import PySparkRuntimeError

WINDOW = 128  # values written per wait
READ_WINDOW = 64  # keys asked per wait


def _client(map_state) -> tuple[Any, Any] | None:
    """(the MapState's client, the processor's API client) when they are pyspark 4.2's, else None."""
    client = getattr(map_state, "_mapStateClient", None)
    api = getattr(client, "_stateful_processor_api_client", None)
    needed = ("sockfile", "pickleSer", "_receive_proto_message", "_deserialize_from_bytes")
    if api is None or not all(hasattr(api, n) for n in needed) or not hasattr(client, "user_key_schema"):
        return None
    return client, api


def _request(call) -> bytes:
    """One MapStateCall request as the client frames it: the format's version (0), the length, the message."""
    message = sm.StateRequest(stateVariableRequest=sm.StateVariableRequest(mapStateCall=call)).SerializeToString()
    return struct.pack("!ii", 0, len(message)) + message


def _exchange(api, requests: list[bytes], what: str) -> list[bytes]:
    """Send a window of requests in one write and read their answers in order; the first error raises.

    Every request of the window is built before any byte is written, so a value that cannot be serialized
    fails the call with nothing of it sent.
    """
    api.sockfile.write(b"".join(requests))
    api.sockfile.flush()
    values = []
    for _ in requests:
        status, error, value = api._receive_proto_message()
        if status != 0:
            raise PySparkRuntimeError(f"Error {what}: {error}")
        values.append(value)
    return values


def put_many(map_state, pairs: list[tuple[tuple, tuple]]) -> None:
    """``map_state.updateValue(key, value)`` for each (key, value), in order, a window per wait."""
    found = _client(map_state)
    if found is None:
        for key, value in pairs:
            map_state.updateValue(key, value)
        return
    client, api = found
    name, dump = map_state._stateName, api.pickleSer.dumps
    key_schema, value_schema = client.user_key_schema, client.value_schema
    for start in range(0, len(pairs), WINDOW):
        requests = [
            _request(sm.MapStateCall(stateName=name, updateValue=sm.UpdateValue(
                userKey=dump(key_schema.toInternal(key)), value=dump(value_schema.toInternal(value))
            )))
            for key, value in pairs[start : start + WINDOW]
        ]  # fmt: skip
        _exchange(api, requests, "updating map state value")


def get_many(map_state, keys: list[tuple]) -> list[tuple | None]:
    """``map_state.getValue(key)`` for each key, in order (None where absent), a window per wait."""
    found = _client(map_state)
    if found is None:
        return [map_state.getValue(key) for key in keys]
    client, api = found
    name, dump, schema = map_state._stateName, api.pickleSer.dumps, client.user_key_schema
    out: list[tuple | None] = []
    for start in range(0, len(keys), READ_WINDOW):
        requests = [
            _request(sm.MapStateCall(stateName=name, getValue=sm.GetValue(userKey=dump(schema.toInternal(key)))))
            for key in keys[start : start + READ_WINDOW]
        ]
        out.extend(api._deserialize_from_bytes(v) if v else None for v in _exchange(api, requests, "getting value"))
    return out
