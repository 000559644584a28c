"""Tests of the sweep in ``reludae.experiments.transition`` on a tiny grid."""

import math

import numpy as np
import pytest

from reludae import data
from reludae.experiments import transition as et

TINY = et.SweepConfig(ns=(2, 16), sigmas=(0.1,), steps=20, small_n_steps=30, seeds=2, test_points=50, loss_draws=4)


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
    for row in rows:
        assert row["steps"] == (TINY.small_n_steps if row["n"] <= TINY.width else TINY.steps)
        assert row["hypotheses_hold"] in (0, 1)
        assert -1.0 <= row["max_pair_cosine"] <= 1.0


def test_rows_record_training_set_hypotheses(rows):
    mix = et.mixture(TINY)
    for n in TINY.ns:
        X = et.training_set(mix, n, seed=0)
        matching = [row for row in rows if row["n"] == n]
        assert all(row["max_pair_cosine"] == pytest.approx(data.max_offdiagonal_cosine(X)) for row in matching)
        assert all(row["hypotheses_hold"] == int(et.meets_memorization_hypotheses(X, TINY.width, TINY.lam)) for row in matching)
    # Sixteen stratified points hold four of each mode: two samples of one mode have a positive cosine.
    assert all(row["hypotheses_hold"] == 0 for row in rows if row["n"] == 16)


def test_steps_for_switches_at_the_width():
    config = et.SweepConfig(width=8, steps=100, small_n_steps=300)
    assert config.steps_for(1) == 300
    assert config.steps_for(8) == 300
    assert config.steps_for(9) == 100
    assert et.DEFAULT.steps_for(2) == et.DEFAULT.small_n_steps
    assert et.DEFAULT.steps_for(max(et.DEFAULT.ns)) == et.DEFAULT.steps


@pytest.mark.parametrize("n", [0, -3, 2.5, "4", True])
def test_steps_for_rejects_bad_n(n):
    with pytest.raises(ValueError, match="n must"):
        et.DEFAULT.steps_for(n)


def test_training_set_is_the_sweep_sample():
    mix = et.mixture(TINY, seed=3)
    X = et.training_set(mix, 6, seed=3)
    expected, _ = et.stratified_sample(mix, 6, seed=3006)
    np.testing.assert_array_equal(X, expected)
    assert not np.array_equal(et.training_set(mix, 6, seed=4), X)


@pytest.mark.parametrize(
    "mix, n, seed, message",
    [
        ("mixture", 4, 0, "mix must"),
        (None, 0, 0, "n must"),
        (None, 4, -1, "seed must"),
        (None, 4, 1.5, "seed must"),
    ],
)
def test_training_set_rejects_bad_input(mix, n, seed, message):
    mix = et.mixture(TINY) if mix is None else mix
    with pytest.raises(ValueError, match=message):
        et.training_set(mix, n, seed=seed)


def test_meets_memorization_hypotheses():
    X = data.negative_cosine_points(4, 6, seed=0)
    assert et.meets_memorization_hypotheses(X, width=4, lam=0.01)
    assert not et.meets_memorization_hypotheses(X, width=3, lam=0.01)  # n > p
    smallest = float(np.min(np.sum(X**2, axis=1)))
    assert et.meets_memorization_hypotheses(X, width=8, lam=0.99 * smallest / 4)
    assert not et.meets_memorization_hypotheses(X, width=8, lam=smallest / 4)  # n lam = min ||x||^2
    assert not et.meets_memorization_hypotheses(data.with_positive_cosine(X, cosine=0.01), width=8, lam=0.01)
    assert et.meets_memorization_hypotheses(X[:1], width=1, lam=0.0)  # one point: no pair to check


@pytest.mark.parametrize(
    "X, width, lam, message",
    [
        (np.zeros(3), 4, 0.01, "X must"),
        (np.full((2, 3), np.nan), 4, 0.01, "X contains"),
        (np.eye(3), 0, 0.01, "width must"),
        (np.eye(3), 2.0, 0.01, "width must"),
        (np.eye(3), 4, -0.1, "lam must"),
        (np.eye(3), 4, float("inf"), "lam must"),
    ],
)
def test_meets_memorization_hypotheses_rejects_bad_input(X, width, lam, message):
    with pytest.raises(ValueError, match=message):
        et.meets_memorization_hypotheses(X, width, lam)


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
    [
        dict(ns=(4,)),
        dict(ns=(8, 4)),
        dict(ns=(0, 4)),
        dict(sigmas=(-0.1,)),
        dict(width=0),
        dict(modes=1),
        dict(loss_draws=1),
        dict(steps=0),
        dict(small_n_steps=0),
        dict(small_n_steps=-100),
        dict(small_n_steps=2.5),
    ],
)
def test_bad_config_raises(changes):
    with pytest.raises(ValueError):
        et.SweepConfig(**changes)


def test_bad_small_n_steps_names_the_value():
    with pytest.raises(ValueError, match=r"small_n_steps must be at least 1, got 0"):
        et.SweepConfig(small_n_steps=0)


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
    with pytest.raises(ValueError, match="config must"):
        et.grid_point(et.mixture(TINY), 4, 0.1, "tiny")


# ----------------------------------------------------------------------------------------------
# The claims, on synthetic sweep rows (no training)


def _fake_rows(hypotheses, storage, top1=1.0):
    """Rows of the default grid: ``hypotheses`` and ``storage`` map n to a value, 0 and 0.1 elsewhere."""
    rows = []
    for sigma in et.DEFAULT.sigmas:
        for n in et.DEFAULT.ns:
            for seed in range(et.DEFAULT.seeds):
                row = {field: 0.0 for field in et.FIELDS}
                row.update(
                    n=n,
                    sigma=sigma,
                    seed=seed,
                    steps=et.DEFAULT.steps_for(n),
                    hypotheses_hold=hypotheses.get(n, 0),
                    storage_fraction=storage.get(n, 0.1),
                    top1_share=top1 if n in storage else 0.5,
                    train_loss=1.0,
                    test_loss=1.0,
                )
                rows.append(row)
    return rows


@pytest.fixture
def fake_sweep(monkeypatch):
    def install(rows):
        monkeypatch.setattr(et, "sweep", lambda full=False, seed=0: [dict(row) for row in rows])

    return install


def test_claims_skip_sets_failing_hypotheses(fake_sweep):
    from reludae import claims

    fake_sweep(_fake_rows(hypotheses={2: 1, 4: 0}, storage={2: 1.0, 4: 0.5}))
    for claim_id in ("transition.memorized-small-n", "transition.spiky-small-n"):
        verdict = claims.evaluate(claim_id, claims.Settings())
        assert verdict.check.details["ns"] == [2]
        assert verdict.check.details["excluded"] == [4]
        assert verdict.check.passed
        assert not verdict.control.passed
    verdict = claims.evaluate("transition.memorized-small-n", claims.Settings())
    assert verdict.check.measured == 1.0


def test_claims_fail_on_unstored_valid_set(fake_sweep):
    from reludae import claims

    fake_sweep(_fake_rows(hypotheses={2: 1, 4: 1}, storage={2: 1.0, 4: 0.5}))
    verdict = claims.evaluate("transition.memorized-small-n", claims.Settings())
    assert verdict.check.measured == 0.5
    assert not verdict.passed


def test_claims_fail_without_valid_sets(fake_sweep):
    from reludae import claims

    fake_sweep(_fake_rows(hypotheses={}, storage={2: 1.0, 4: 1.0}))
    for claim_id in ("transition.memorized-small-n", "transition.spiky-small-n"):
        verdict = claims.evaluate(claim_id, claims.Settings())
        assert verdict.check.details["ns"] == []
        assert math.isnan(verdict.check.measured)
        assert not verdict.passed


def test_memorized_claim_reports_significant_columns(fake_sweep):
    from reludae import claims

    rows = _fake_rows(hypotheses={2: 1, 4: 1}, storage={2: 1.0, 4: 1.0})
    for row in rows:
        row["significant_columns"] = 6 + row["seed"] if row["n"] == 2 else 8
    fake_sweep(rows)
    verdict = claims.evaluate("transition.memorized-small-n", claims.Settings())
    assert verdict.check.details["significant_columns"] == {2: [6, 7], 4: [8, 8]}


def test_memorized_tolerance_matches_arithmetic():
    from reludae import claims
    from reludae.claims import transition as ct

    width, models = et.DEFAULT.width, et.DEFAULT.seeds
    assert models == 2
    source = claims.get("transition.memorized-small-n").tolerance_source
    for s in (6, 7, 8):  # one unaligned column in one model with s significant columns passes
        average = 1 - 1 / (models * s)
        assert average >= ct.MEMORIZED_FRACTION
        assert f"{average:.3f}" in source
    assert 1 - 1 / (models * 5) >= ct.MEMORIZED_FRACTION  # "s >= 5"
    assert 1 - 1 / (models * 4) < ct.MEMORIZED_FRACTION
    # Two unaligned columns, in one model or one in each, fail at every count up to the width.
    for s1 in range(2, width + 1):
        assert 1 - 2 / (models * s1) < ct.MEMORIZED_FRACTION
        for s2 in range(1, width + 1):
            assert 1 - 1 / (models * s1) - 1 / (models * s2) < ct.MEMORIZED_FRACTION
    assert f"{1 - 2 / (models * width):.3f}" in source
    # The full sweep averages three models: two unaligned columns in models of width 8 pass.
    assert et.FULL.seeds == 3
    assert 1 - 2 / (et.FULL.seeds * width) >= ct.MEMORIZED_FRACTION
    assert f"{1 - 2 / (et.FULL.seeds * width):.3f}" in source


def test_distance_by_mode_splits_sweep_distance(rows):
    mix = et.mixture(TINY)
    for n in TINY.ns:
        split = et.distance_by_mode(mix, n, TINY.sigmas[0], TINY, seed=0)
        matching = [row for row in rows if row["n"] == n]
        assert len(split) == len(matching) == TINY.seeds
        for part, row in zip(split, matching):
            assert part["dist_emp"] == pytest.approx(row["dist_emp"], rel=1e-9)
            u = part["unseen_fraction"]
            if n < TINY.modes:
                assert 0 < u < 1
                assert part["dist_emp"] == pytest.approx((1 - u) * part["dist_emp_seen"] + u * part["dist_emp_unseen"])
                assert 0 <= part["silent_unseen"] <= 1
                assert part["emp_unseen"] > 0
            else:  # every mode has a training point
                assert u == 0
                assert part["dist_emp_seen"] == pytest.approx(part["dist_emp"])
                for key in ("dist_emp_unseen", "dist_gt_unseen", "network_unseen", "emp_unseen", "silent_unseen"):
                    assert math.isnan(part[key])


def test_distance_by_mode_rejects_bad_input():
    mix = et.mixture(TINY)
    with pytest.raises(ValueError, match="config must"):
        et.distance_by_mode(mix, 2, 0.1, "tiny")
    with pytest.raises(ValueError, match="sigma must"):
        et.distance_by_mode(mix, 2, 0.0, TINY)
    with pytest.raises(ValueError, match="n must"):
        et.distance_by_mode(mix, 0, 0.1, TINY)


def test_posterior_mean_test_loss():
    mix = et.mixture(TINY)
    X_test, _ = mix.sample(TINY.test_points, seed=10_000)
    losses = [et.posterior_mean_test_loss(mix, sigma, TINY, seed=0) for sigma in (0.05, 0.1, 0.2)]
    assert 0 < losses[0] < losses[1] < losses[2]
    assert losses[-1] < np.mean(np.sum(X_test**2, axis=1))  # better than the zero map
    assert et.posterior_mean_test_loss(mix, 0.1, TINY, seed=0) == losses[1]  # deterministic
    with pytest.raises(ValueError, match="config must"):
        et.posterior_mean_test_loss(mix, 0.1, "tiny")
    with pytest.raises(ValueError, match="sigma must"):
        et.posterior_mean_test_loss(mix, -0.1, TINY)
