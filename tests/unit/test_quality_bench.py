"""The quality benchmark's arithmetic: same-label precision of exact neighbours, and chance."""

from __future__ import annotations

import numpy as np
import pytest

from bench.quality import chance, precision_exact

pytestmark = pytest.mark.unit


def test_separated_labels_give_precision_one_and_chance_is_the_share_of_the_others():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (6, 3)), rng.normal(10, 0.1, (4, 3))])
    labels = np.asarray(["a"] * 6 + ["b"] * 4)
    exclude = np.eye(10, dtype=bool)
    assert precision_exact(x, labels, exclude, 3) == 1.0
    assert chance(labels, exclude) == pytest.approx((6 * 5 / 9 + 4 * 3 / 9) / 10)


def test_excluded_candidates_are_never_counted():
    x = np.asarray([[0.0], [0.1], [5.0], [5.1]])
    labels = np.asarray(["a", "a", "b", "b"])
    exclude = np.eye(4, dtype=bool)
    exclude[0, 1] = exclude[1, 0] = exclude[2, 3] = exclude[3, 2] = True  # each one's same-label twin left out
    assert precision_exact(x, labels, exclude, 1) == 0.0
