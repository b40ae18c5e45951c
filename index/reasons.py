"""Why a track is near a reference: the feature groups that are close, as short words ("close in timbre").

Part of :class:`index.query.SimilarityIndex` (a mixin; :meth:`Reasons._init_reasons` sets up its tables
from the manifest's columns and group scales).
"""

from __future__ import annotations

import numpy as np

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
        # Per-group RMS distance as one matrix product: row g averages the squared differences of group g.
        self._group_names = list(slices)
        group_mean = np.zeros((len(slices), width))
        for i, idx in enumerate(slices.values()):
            group_mean[i, idx] = 1.0 / len(idx)
        self._group_scale = np.asarray([group_scale.get(g, 1.0) for g in self._group_names])
        self._group_mean_t = np.ascontiguousarray(group_mean.T)
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
            codes[part] = self._reason_codes(self.standardized_at(shards[part], rows[part]), references[ref_of[part]])
        return codes

    def explain_items(self, references: np.ndarray, ref_of: np.ndarray, items: np.ndarray) -> np.ndarray:
        """:meth:`explain_at` for flat positions (items)."""
        return self.explain_at(references, ref_of, *self.shard_rows(np.asarray(items, np.int64)))

    def reason_table(self) -> np.ndarray:
        """The words of every reason code, as an object array indexed by code."""
        return self._reason_table

    def reason_words(self, codes: np.ndarray) -> list[str]:
        return [self._reason_words[c] for c in np.asarray(codes).tolist()]

    def _reason_codes(self, others: np.ndarray, references: np.ndarray) -> np.ndarray:
        """0: no group close; 1 + a: group a; 1 + G + a * G + b: groups a then b (G groups)."""
        diff = np.subtract(others, references, dtype=np.float32)
        np.square(diff, out=diff)
        # In double precision: a float32 product rounds a row differently with the rows beside it, and a
        # reason must not change with how a micro-batch was composed (a restart equals an undisturbed run).
        ratio = np.sqrt(diff.astype(np.float64) @ self._group_mean_t) / self._group_scale[None, :]
        g = len(self._group_names)
        if g < 2:  # a single group: "close in it" or not
            return np.where(ratio[:, 0] < 0.6, 1, 0) if g else np.zeros(len(ratio), np.int64)
        order = np.argsort(ratio, axis=1, kind="stable")[:, :2]
        close = np.take_along_axis(ratio, order, axis=1) < 0.6
        a, b = order[:, 0], order[:, 1]
        return np.where(~close[:, 0], 0, np.where(~close[:, 1], 1 + a, 1 + g + a * g + b))
