"""The serving store's bulk writes on the real MongoDB-protocol server, through the patched fast path and beside it."""

from __future__ import annotations

import pytest
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from connectors import mongo_io

pytestmark = pytest.mark.mongo


def test_bulk_replacement_upserts_insert_the_new_and_replace_the_existing(mongo_db):
    coll = mongo_db["recs"]
    coll.insert_many([{"_id": "a", "v": 1, "old": True}, {"_id": "b", "v": 1, "old": True}])
    ops = [
        ReplaceOne({"_id": "a"}, {"v": 2, "items": [{"track_id": 1, "score": 0.5}]}, upsert=True),
        ReplaceOne({"_id": "c"}, {"v": 2}, upsert=True),
        ReplaceOne({"_id": "c"}, {"v": 3}, upsert=True),  # the same id twice in one command: the last wins
        ReplaceOne({"_id": 7}, {"_id": 7, "v": 2}, upsert=True),  # an _id in the replacement that agrees
    ]
    result = coll.bulk_write(ops, ordered=False)
    assert result.upserted_count == 2 and sorted(map(str, result.upserted_ids.values())) == ["7", "c"]
    assert result.matched_count == 2
    docs = {d["_id"]: d for d in coll.find()}
    assert docs["a"] == {"_id": "a", "v": 2, "items": [{"track_id": 1, "score": 0.5}]}, "replaced, old fields gone"
    assert docs["b"] == {"_id": "b", "v": 1, "old": True}, "untouched"
    assert docs["c"] == {"_id": "c", "v": 3} and docs[7] == {"_id": 7, "v": 2}


def test_writes_off_the_fast_path_keep_their_meaning(mongo_db):
    coll = mongo_db["other"]
    coll.insert_one({"_id": "a", "n": 1, "keep": "me"})
    coll.bulk_write([UpdateOne({"_id": "a"}, {"$set": {"n": 2}}, upsert=True), InsertOne({"_id": "z"})])
    assert coll.find_one({"_id": "a"}) == {"_id": "a", "n": 2, "keep": "me"}
    coll.bulk_write([ReplaceOne({"n": 2}, {"n": 3})])  # a filter other than _id
    assert coll.find_one({"_id": "a"}) == {"_id": "a", "n": 3}
    # A replacement whose _id differs from the filter's is left to the general path, which refuses it
    # (FerretDB's reply then lacks nModified, which pymongo trips over: any error will do here).
    with pytest.raises((BulkWriteError, KeyError)):
        coll.bulk_write([ReplaceOne({"_id": "a"}, {"_id": "b", "n": 4}, upsert=True)])
    assert coll.find_one({"_id": "a"}) == {"_id": "a", "n": 3} and coll.find_one({"_id": "b"}) is None


def test_upsert_many_writes_thousands_of_documents_in_chunks(mongo_db):
    docs = [{"_id": f"u{i}", "items": [{"track_id": i, "score": 0.1}], "n": i} for i in range(1200)]
    assert mongo_io.upsert_many(mongo_db, "many", docs) == 1200
    assert mongo_db["many"].count_documents({}) == 1200
    mongo_io.upsert_many(mongo_db, "many", [{**d, "n": -1} for d in docs[:600]])
    assert mongo_db["many"].count_documents({"n": -1}) == 600 and mongo_db["many"].find_one({"_id": "u900"})["n"] == 900
