"""The stream's state layout, recorded in its checkpoint: a different bucket count or layout fails at start."""

from __future__ import annotations

import json
from pathlib import Path

from conf.errors import JobInputError

LAYOUT = "listener-buckets-v1"
LAYOUT_FILE = "earshot-state.json"


def check_layout(checkpoint: str, buckets: int) -> None:
    """Record the state layout in a new checkpoint; refuse to run one written with another layout."""
    if "://" in checkpoint and not checkpoint.startswith("file://"):
        return  # a remote checkpoint: the operator keeps stream.state_buckets fixed (README)
    root = Path(checkpoint.removeprefix("file://"))
    marker = root / LAYOUT_FILE
    want = {"layout": LAYOUT, "buckets": buckets}
    if marker.exists():
        have = json.loads(marker.read_text())
        if have != want:
            raise JobInputError(
                f"the checkpoint {root} holds listener state in {have.get('buckets')} buckets "
                f"({have.get('layout')}), but stream.state_buckets is {buckets}: set it back to "
                f"{have.get('buckets')}, or start from a new paths.checkpoint_root"
            )
        return
    if (root / "offsets").is_dir() and any((root / "offsets").iterdir()):
        raise JobInputError(
            f"the checkpoint {root} was written by an earlier Earshot with one state entry per listener key; "
            "this version keeps listeners in buckets: start from a new paths.checkpoint_root "
            "(events stay in Kafka and are read again from the earliest offset)"
        )
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(want))
