"""Tests of the command line ``python -m reludae``."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reludae.__main__ import main
from reludae.claims import Outcome, registry

SOURCE = Path(__file__).resolve().parents[1] / "src"

ROW_KEYS = {
    "id",
    "result",
    "chapter",
    "statement",
    "check",
    "check_passed",
    "measured",
    "predicted",
    "tolerance",
    "relation",
    "tolerance_source",
    "control_setting",
    "control",
    "control_failed_as_intended",
    "verified",
    "seconds",
}


def register_fake(claim_id, chapter, check_value, control_value, calls=None):
    """Register a claim whose check and control measure the given values against 0 +- 0.1."""

    @registry.claim(claim_id, "Lemma 0", chapter, "a fake claim", "none", "a fake control")
    def measure(settings, control):
        if calls is not None:
            calls.append(settings)
        return Outcome.close(control_value if control else check_value, 0.0, 0.1)


@pytest.fixture
def fake_claims(monkeypatch):
    """An in-process registry with one verified claim and one whose control passes."""
    monkeypatch.setattr(registry, "_CLAIMS", {})
    calls = []
    register_fake("fake.pass", "alpha", 0.0, 1.0, calls)
    register_fake("fake.fail", "beta", 0.0, 0.0)
    return calls


def run_module(*arguments):
    environment = dict(os.environ, PYTHONPATH=str(SOURCE))
    return subprocess.run(
        [sys.executable, "-m", "reludae", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


# --- usage errors ---------------------------------------------------------------------------


def test_unknown_claim_exits_2(fake_claims, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "--claim", "no.such.claim"])

    assert stop.value.code == 2
    assert "unknown claim id(s) no.such.claim" in capsys.readouterr().err


def test_unknown_chapter_exits_2(fake_claims, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "--chapter", "gamma"])

    assert stop.value.code == 2
    assert "unknown chapter(s) gamma; choose from alpha, beta" in capsys.readouterr().err


def test_negative_seed_exits_2(fake_claims, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "--seed", "-1"])

    assert stop.value.code == 2
    assert "--seed must be non-negative, got -1" in capsys.readouterr().err


def test_disjoint_filters_exit_2(fake_claims, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "--claim", "fake.pass", "--chapter", "beta"])

    assert stop.value.code == 2
    assert "no claim matches both --claim and --chapter" in capsys.readouterr().err


def test_missing_command_exits_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])

    assert stop.value.code == 2


def test_empty_registry_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(registry, "_CLAIMS", {})

    assert main(["verify"]) == 1
    assert "no claims are registered" in capsys.readouterr().err


# --- list and verify ------------------------------------------------------------------------


def test_list_prints_claims(fake_claims, capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert len(lines) == 2
    assert lines[0].startswith("fake.pass")
    assert "a fake claim" in lines[0]


def test_verify_passing_claim(fake_claims, capsys):
    assert main(["verify", "--claim", "fake.pass"]) == 0
    out = capsys.readouterr().out

    assert "verified" in out
    assert out.rstrip().endswith("1 passed, 0 failed")


def test_verify_failing_claim(fake_claims, capsys):
    assert main(["verify", "--chapter", "beta"]) == 1
    out = capsys.readouterr().out

    assert "PASSES" in out  # the control passed, so the claim is not verified
    assert out.rstrip().endswith("0 passed, 1 failed")


def test_verify_all_fails_if_one_fails(fake_claims, capsys):
    assert main(["verify"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("1 passed, 1 failed")


def test_verify_passes_settings(fake_claims, capsys):
    main(["verify", "--claim", "fake.pass", "--full", "--seed", "5"])

    assert fake_claims == [registry.Settings(full=True, seed=5)] * 2


def test_verify_json_structure(fake_claims, capsys):
    assert main(["verify", "--json", "--full", "--seed", "3"]) == 1
    document = json.loads(capsys.readouterr().out)

    assert document["settings"] == {"full": True, "seed": 3}
    assert [row["id"] for row in document["claims"]] == ["fake.pass", "fake.fail"]
    for row in document["claims"]:
        assert set(row) == ROW_KEYS
    assert document["claims"][0]["verified"] is True
    assert document["claims"][0]["control_failed_as_intended"] is True
    assert document["claims"][1]["verified"] is False
    assert document["claims"][1]["control_failed_as_intended"] is False
    assert document["claims"][0]["relation"] == "close"
    assert document["claims"][0]["tolerance"] == 0.1


def test_verify_json_strict_with_nan(monkeypatch, capsys):
    """A NaN measurement fails the claim and is written as null, since JSON has no NaN."""
    monkeypatch.setattr(registry, "_CLAIMS", {})
    register_fake("fake.nan", "alpha", math.nan, 1.0)

    assert main(["verify", "--json"]) == 1
    out = capsys.readouterr().out

    def reject_constant(name):
        raise ValueError(f"non-standard JSON constant {name}")

    row = json.loads(out, parse_constant=reject_constant)["claims"][0]
    assert row["measured"] is None
    assert row["check_passed"] is False


# --- the real entry point -------------------------------------------------------------------


def test_module_list_runs():
    completed = run_module("list")

    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr


def test_module_unknown_claim_exits_2():
    completed = run_module("verify", "--claim", "no.such.claim")

    assert completed.returncode == 2
    assert "unknown claim id(s) no.such.claim" in completed.stderr
