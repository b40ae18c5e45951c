"""Fixtures of the unit tests: a small index built with numpy alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.local import build_version
from index.reader import Index
from index.synthetic import COLUMNS, synthetic_catalogue


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Index:
    """8 genres x 40 tracks, 4 artists each, in 2 shards."""
    ids, raw, frame = synthetic_catalogue(per_genre=40, artists_per_genre=4)
    root = tmp_path_factory.mktemp("index")
    return Index(build_version(Path(root), ids, raw, COLUMNS, feature_version="t", catalogue=frame, shards=2))
