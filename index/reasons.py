"""Why a track is near a reference: the feature groups that are close, as short words ("close in timbre").

Part of :class:`index.query.SimilarityIndex` (a mixin; :meth:`Reasons._init_reasons` sets up its tables
from the manifest's columns and group scales).
"""

from __future__ import annotations

import numpy as np

CLOSE = 0.6  # a feature group is "close" within this share of its typical distance (index.groups)
GROUP_WORDS = {
    "timbre": "timbre",
    "harmony": "harmony",
    "brightness": "brightness",
    "energy": "energy",
    "rhythm": "tempo",
    "texture": "texture",  # musicnn's mid end (index.space: musicnn-msd)
}


class Reasons:
    """Reason codes and words for pairs of standardized vectors."""

    def _init_reasons(self, slices: dict[str, list[int]], group_scale: dict[str, float], width: int) -> None:
        # Per-group RMS distance: group g averages the squared differences of its columns, as (starts,
        # columns, weights) for the compiled codes (index.kernels.reason_codes).
        self._group_names = list(slices)
        self._group_scale = np.asarray([group_scale.get(g, 1.0) for g in self._group_names])
        self._reason_width = width
        columns = [np.unique(np.asarray(idx, np.int64)) for idx in slices.values()]
        self._group_starts = np.concatenate([[0], np.cumsum([len(c) for c in columns])]).astype(np.int64)
        self._group_columns = np.concatenate([np.empty(0, np.int64), *columns])
        self._group_weights = np.concatenate(
            [np.empty(0), *(np.full(len(c), 1.0 / len(idx)) for c, idx in zip(columns, slices.values(), strict=True))]
        )
        self._ungrouped = np.setdiff1d(np.arange(width, dtype=np.int64), self._group_columns)
        names = [GROUP_WORDS[g] for g in self._group_names]
        # The reasons by code (:meth:`_reason_codes`): none close, one group, then two.
        self._reason_words = ["similar overall", *(f"close in {a}" for a in names)]
        self._reason_words += [f"close in {a} and {b}" for a in names for b in names]
        self._reason_table = np.asarray(self._reason_words, object)

    def explain_many(self, reference: np.ndarray, others: np.ndarray) -> list[str]:
        """Why each row of ``others`` (standardized) is near ``reference``: its closest feature groups."""
        others = np.asarray(others)
        return self.explain_pairs(np.broadcast_to(np.asarray(reference), others.shape), others)

    def explain_pairs(self, references: np.ndarray, others: np.ndarray, *, chunk: int = 4096) -> list[str]:
        """Why row i of ``others`` is near row i of ``references``: up to two groups within 0.6 of their scale."""
        codes = [
            self._reason_codes(others[a : a + chunk], references[a : a + chunk]) for a in range(0, len(others), chunk)
        ]
        return self.reason_words(np.concatenate(codes) if codes else np.empty(0, np.int64))

    def explain_at(
        self, references: np.ndarray, ref_of: np.ndarray, shards: np.ndarray, rows: np.ndarray, *, chunk: int = 2048
    ) -> np.ndarray:
        """Reason codes (:meth:`reason_words`) of the track at (shards[i], rows[i]) against ``references[ref_of[i]]``.

        In chunks grouped by shard, so no pair matrix of every track's 519 values is ever built.
        """
        references = np.asarray(references, np.float32)
        shards, rows, ref_of = (np.asarray(a, np.int64) for a in (shards, rows, ref_of))
        codes = np.empty(len(rows), np.int64)
        order = np.argsort(shards, kind="stable")
        for a in range(0, len(order), chunk):
            part = order[a : a + chunk]
            codes[part] = self._reason_codes(self.standardized_at(shards[part], rows[part]), references, ref_of[part])
        return codes

    def explain_items(self, references: np.ndarray, ref_of: np.ndarray, items: np.ndarray) -> np.ndarray:
        """:meth:`explain_at` for flat positions (items)."""
        return self.explain_at(references, ref_of, *self.shard_rows(np.asarray(items, np.int64)))

    def reason_table(self) -> np.ndarray:
        """The words of every reason code, as an object array indexed by code."""
        return self._reason_table

    def reason_words(self, codes: np.ndarray) -> list[str]:
        return [self._reason_words[c] for c in np.asarray(codes).tolist()]

    def _reason_codes(self, others: np.ndarray, references: np.ndarray, ref_of: np.ndarray | None = None) -> np.ndarray:
        """0: no group close; 1 + a: group a; 1 + G + a * G + b: groups a then b (G groups).

        Row i of ``others`` (standardized) against ``references[ref_of[i]]`` (row i without ``ref_of``; one
        vector for every row). Compiled (:func:`index.kernels.reason_codes`): each row's group distances are
        summed in double precision in a fixed order, so a reason does not change with how a micro-batch was
        composed (a restart equals an undisturbed run).
        """
        from index import kernels

        others = np.ascontiguousarray(others, np.float32).reshape(-1, self._reason_width)
        references = np.ascontiguousarray(references, np.float32).reshape(-1, others.shape[1])
        if ref_of is None:
            ref_of = np.zeros(len(others), np.int64) if len(references) == 1 else np.arange(len(others))
        kernels.ready()
        return kernels.reason_codes(
            others, references, np.asarray(ref_of, np.int64), self._group_starts, self._group_columns,
            self._group_weights, self._ungrouped, self._group_scale, CLOSE,
        )  # fmt: skip
