"""Tests of the claims registry in ``reludae.claims.registry``."""

import math

import pytest

from reludae.claims import registry
from reludae.claims.registry import Claim, Outcome, Settings, Verdict


@pytest.fixture
def empty_registry(monkeypatch):
    """Replace the global registry by an empty one for the test; the original comes back after."""
    monkeypatch.setattr(registry, "_CLAIMS", {})


def make_claim(id="test.fake", check_passes=True, control_passes=False):
    def measure(settings, control):
        passes = control_passes if control else check_passes
        return Outcome.close(0.0 if passes else 1.0, 0.0, 0.1)

    return Claim(
        id=id,
        result="Lemma 0",
        chapter="testing",
        statement="a fake claim",
        tolerance_source="none",
        control_setting="a fake control",
        check=lambda settings: measure(settings, control=False),
        control=lambda settings: measure(settings, control=True),
    )


# --- outcomes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome, passed",
    [
        (Outcome.close(1.05, 1.0, 0.1), True),
        (Outcome.close(0.9, 1.0, 0.1), True),  # the boundary counts as close
        (Outcome.close(1.2, 1.0, 0.1), False),
        (Outcome.close(0.8, 1.0, 0.1), False),
        (Outcome.below(0.5, 1.0), True),
        (Outcome.below(1.0, 1.0), True),
        (Outcome.below(1.5, 1.0), False),
        (Outcome.above(1.5, 1.0), True),
        (Outcome.above(1.0, 1.0), True),
        (Outcome.above(0.5, 1.0), False),
    ],
)
def test_outcome_comparisons(outcome, passed):
    assert outcome.passed is passed


@pytest.mark.parametrize("make", [Outcome.below, Outcome.above, lambda m, p: Outcome.close(m, p, math.inf)])
def test_outcome_nan_fails(make):
    assert not make(math.nan, 1.0).passed


def test_outcome_unknown_relation():
    with pytest.raises(ValueError, match="relation must be one of .*got 'equal'"):
        Outcome(1.0, 1.0, "equal")


def test_outcome_describe_and_details():
    outcome = Outcome.below(0.0012, 0.01, curve=[1, 2])

    assert outcome.describe() == "0.0012 <= 0.01"
    assert Outcome.above(2.0, 1.0).describe() == "2 >= 1"
    assert Outcome.close(1.0, 1.5, 0.25).describe() == "|1 - 1.5| <= 0.25"
    assert outcome.details == {"curve": [1, 2]}
    assert outcome.tolerance == 0.0


# --- verdicts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "check_passes, control_passes, verified",
    [(True, False, True), (True, True, False), (False, False, False), (False, True, False)],
)
def test_verdict_needs_failing_control(check_passes, control_passes, verified):
    claim = make_claim(check_passes=check_passes, control_passes=control_passes)
    verdict = Verdict(claim, claim.check(Settings()), claim.control(Settings()), 0.0)

    assert verdict.passed is verified


def test_verdict_summary_lists_parts():
    claim = make_claim(control_passes=True)
    summary = Verdict(claim, claim.check(Settings()), claim.control(Settings()), 0.0).summary()

    assert summary.startswith("test.fake (Lemma 0) FAILED: a fake claim")
    assert "check:   |0 - 0| <= 0.1 -> pass" in summary
    assert "control: |0 - 0| <= 0.1 -> pass (a fake control; must fail)" in summary
    assert "tolerance: none" in summary


# --- the registry ---------------------------------------------------------------------------


def test_register_rejects_duplicate(empty_registry):
    registry.register(make_claim())

    with pytest.raises(ValueError, match="claim id 'test.fake' is registered twice"):
        registry.register(make_claim())
    assert [c.id for c in registry.all_claims()] == ["test.fake"]


def test_registry_restored_after_test():
    """The fixture above must not leak the fake claim into the global registry."""
    assert "test.fake" not in {c.id for c in registry.all_claims()}


def test_claim_decorator_registers(empty_registry):
    calls = []

    @registry.claim("test.decorated", "Theorem 1", "testing", "holds", "exact", "never")
    def measure(settings, control):
        calls.append((settings, control))
        return Outcome.below(1.0 if control else 0.0, 0.5)

    settings = Settings(full=True, seed=3)
    verdict = registry.evaluate("test.decorated", settings)

    assert registry.get("test.decorated").result == "Theorem 1"
    assert calls == [(settings, False), (settings, True)]
    assert verdict.passed
    assert verdict.seconds >= 0


def test_get_unknown_lists_ids(empty_registry):
    registry.register(make_claim("test.b"))
    registry.register(make_claim("test.a"))

    with pytest.raises(KeyError, match="unknown claim id 'test.c'; known ids: test.a, test.b"):
        registry.get("test.c")
    assert [c.id for c in registry.all_claims()] == ["test.b", "test.a"]  # registration order


def test_evaluate_default_settings(empty_registry):
    seen = []

    @registry.claim("test.settings", "Theorem 1", "testing", "holds", "exact", "never")
    def measure(settings, control):
        seen.append(settings)
        return Outcome.below(float(control), 0.5)

    registry.evaluate("test.settings")

    assert seen == [Settings(full=False, seed=0)] * 2


def test_verify_raises_summary(empty_registry):
    registry.register(make_claim(check_passes=False))

    with pytest.raises(AssertionError, match=r"test.fake \(Lemma 0\) FAILED") as error:
        registry.verify("test.fake")
    assert "check:   |1 - 0| <= 0.1 -> fail" in str(error.value)


def test_verify_returns_verdict(empty_registry):
    registry.register(make_claim())
    verdict = registry.verify("test.fake")

    assert verdict.passed
    assert verdict.claim.id == "test.fake"
