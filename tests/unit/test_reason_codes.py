"""The compiled reason codes (index.kernels.reason_codes) against the matrix formula they replaced."""

from __future__ import annotations

import numpy as np
import pytest

from index.reasons import CLOSE, Reasons

pytestmark = pytest.mark.unit


def matrix_codes(reasons: Reasons, slices: dict[str, list[int]], others, references) -> np.ndarray:
    """The earlier formula: float32 squared differences, one double-precision product with the group means."""
    group_mean = np.zeros((len(slices), reasons._reason_width))
    for i, idx in enumerate(slices.values()):
        group_mean[i, idx] = 1.0 / len(idx)
    with np.errstate(all="ignore"):
        diff = np.square(np.subtract(others, references, dtype=np.float32))
        ratio = np.sqrt(diff.astype(np.float64) @ group_mean.T) / reasons._group_scale[None, :]
    g = len(slices)
    if g < 2:
        return np.where(ratio[:, 0] < CLOSE, 1, 0) if g else np.zeros(len(ratio), np.int64)
    order = np.argsort(ratio, axis=1, kind="stable")[:, :2]
    close = np.take_along_axis(ratio, order, axis=1) < CLOSE
    a, b = order[:, 0], order[:, 1]
    return np.where(~close[:, 0], 0, np.where(~close[:, 1], 1 + a, 1 + g + a * g + b))


def reasons_for(slices: dict[str, list[int]], width: int, scale: dict[str, float]) -> Reasons:
    r = Reasons()
    r._init_reasons(slices, scale, width)
    return r


@pytest.mark.parametrize("groups", [1, 2, 5])
def test_compiled_codes_equal_the_matrix_formula(groups: int):
    rng = np.random.default_rng(groups)
    width = 40
    names = ["timbre", "harmony", "brightness", "energy", "rhythm"][:groups]
    cuts = np.sort(rng.choice(np.arange(1, width - 1), groups, replace=False))
    slices = {n: list(range(a, b)) for n, a, b in zip(names, [0, *cuts[:-1]], cuts, strict=True)}
    slices[names[0]] = slices[names[0]] + [slices[names[0]][0]]  # a repeated column counts once, as before
    reasons = reasons_for(slices, width, {n: float(rng.uniform(0.5, 2.0)) for n in names})
    others = rng.normal(size=(4000, width)).astype(np.float32)
    references = (others + rng.normal(scale=rng.uniform(0.05, 1.5, size=(4000, 1)), size=others.shape)).astype(
        np.float32
    )
    others[7, 3] = np.nan  # a broken vector: no group is close
    references[11] = others[11]  # identical: every group at 0, ties go to the first
    want = matrix_codes(reasons, slices, others, references)
    assert len(set(want.tolist())) >= (3 if groups > 1 else 2)  # the data reaches several codes
    np.testing.assert_array_equal(reasons._reason_codes(others, references), want)
    # References by place (the stream's path) and one reference for every row.
    ref_of = rng.integers(0, 50, len(others))
    want = matrix_codes(reasons, slices, others, references[ref_of])
    np.testing.assert_array_equal(reasons._reason_codes(others, references[:50], ref_of), want)
    np.testing.assert_array_equal(
        reasons._reason_codes(others, references[0]), matrix_codes(reasons, slices, others, references[:1])
    )


def test_a_rows_code_does_not_depend_on_the_rows_beside_it():
    rng = np.random.default_rng(3)
    slices = {"timbre": list(range(0, 20)), "harmony": list(range(20, 30)), "energy": list(range(30, 40))}
    reasons = reasons_for(slices, 40, {"timbre": 1.0, "harmony": 0.8, "energy": 1.2})
    others = rng.normal(size=(500, 40)).astype(np.float32)
    references = (others + rng.normal(scale=0.5, size=others.shape)).astype(np.float32)
    whole = reasons._reason_codes(others, references)
    alone = [int(reasons._reason_codes(others[i : i + 1], references[i : i + 1])[0]) for i in range(0, 500, 37)]
    assert alone == whole[::37].tolist()


def test_a_difference_that_is_not_finite_anywhere_is_close_in_nothing():
    slices = {"timbre": [0, 1], "harmony": [2, 3]}  # column 4 is in no group
    reasons = reasons_for(slices, 5, {"timbre": 1.0, "harmony": 1.0})
    references = np.zeros((4, 5), np.float32)
    others = np.zeros((4, 5), np.float32)
    others[1, 2], others[2, 4], others[3, 0] = np.nan, np.inf, 3e19  # 3e19 squared overflows float32
    np.testing.assert_array_equal(reasons._reason_codes(others, references), [1 + 2 + 0 * 2 + 1, 0, 0, 0])
    np.testing.assert_array_equal(matrix_codes(reasons, slices, others, references), [4, 0, 0, 0])
