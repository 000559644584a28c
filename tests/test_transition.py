"""Tests of the sweep in ``reludae.experiments.transition`` on a tiny grid."""

import math

import numpy as np
import pytest

from reludae import data
from reludae.experiments import transition as et

TINY = et.SweepConfig(ns=(2, 16), sigmas=(0.1,), steps=20, seeds=2, test_points=50, loss_draws=4)


@pytest.fixture(scope="module")
def rows():
    return et.run_sweep(TINY, seed=0)


def test_rows_fields_and_count(rows):
    assert len(rows) == len(TINY.ns) * len(TINY.sigmas) * TINY.seeds
    for row in rows:
        assert tuple(row) == et.FIELDS
        assert 0.0 <= row["storage_fraction"] <= 1.0 or math.isnan(row["storage_fraction"])
        assert 1 <= row["significant_columns"] <= TINY.width
        for key in ("train_loss", "test_loss", "dist_emp", "dist_gt", "emp_to_gt"):
            assert row[key] >= 0
    assert sorted({row["n"] for row in rows}) == list(TINY.ns)
    assert len({row["seed"] for row in rows}) == TINY.seeds


def test_sweep_is_deterministic():
    small = et.SweepConfig(ns=(2, 4), sigmas=(0.2,), steps=5, seeds=1, test_points=10, loss_draws=2)
    assert et.run_sweep(small, seed=1) == et.run_sweep(small, seed=1)


def test_csv_round_trip(rows, tmp_path):
    path = et.write_csv(rows, tmp_path / "sweep.csv")
    back = et.read_csv(path)
    assert len(back) == len(rows)
    for original, read in zip(rows, back):
        for key in et.FIELDS:
            if isinstance(original[key], float) and math.isnan(original[key]):
                assert math.isnan(read[key])
            else:
                assert read[key] == pytest.approx(original[key], rel=1e-12)
        assert isinstance(read["n"], int)


def test_aggregate_and_gap_shapes(rows):
    ns, sigmas, table = et.aggregate(rows, "test_loss")
    assert list(ns) == list(TINY.ns)
    assert list(sigmas) == list(TINY.sigmas)
    assert table.shape == (1, 2)
    expected = np.mean([r["test_loss"] for r in rows if r["n"] == 2])
    assert table[0, 0] == pytest.approx(expected)
    _, _, gaps = et.relative_gap(rows)
    assert gaps.shape == (1, 2)
    assert np.all(gaps <= 1.0)


def test_stratified_sample_cycles_through_modes():
    mix = et.mixture(TINY)
    X, labels = et.stratified_sample(mix, 10, seed=0)
    assert X.shape == (10, TINY.dim)
    assert list(labels) == [i % TINY.modes for i in range(10)]


def test_storage_fraction_of_stored_points():
    X = data.negative_cosine_points(3, 5, seed=0)
    assert et.storage_fraction(np.column_stack([X.T, 0.5 * X[0]]), X) == 1.0
    rng = np.random.default_rng(0)
    assert et.storage_fraction(rng.standard_normal((5, 3)), X) < 1.0
    assert math.isnan(et.storage_fraction(np.zeros((5, 2)), X))


@pytest.mark.parametrize(
    "changes",
    [dict(ns=(4,)), dict(ns=(8, 4)), dict(ns=(0, 4)), dict(sigmas=(-0.1,)), dict(width=0), dict(modes=1), dict(loss_draws=1)],
)
def test_bad_config_raises(changes):
    with pytest.raises(ValueError):
        et.SweepConfig(**changes)


def test_bad_inputs_raise(rows, tmp_path):
    with pytest.raises(ValueError):
        et.run_sweep("default")
    with pytest.raises(ValueError):
        et.write_csv([], tmp_path / "empty.csv")
    with pytest.raises(ValueError):
        et.write_csv([{"n": 2}], tmp_path / "bad.csv")
    with pytest.raises(ValueError):
        et.aggregate(rows, "not a field")
    with pytest.raises(ValueError):
        et.stratified_sample(np.zeros((2, 2)), 4)
    with pytest.raises(ValueError):
        et.grid_point(et.mixture(TINY), 4, 0.0, TINY)
