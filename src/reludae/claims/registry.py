"""The claims registry: every numerical statement of the book as a check that can fail.

A claim pairs a ``check`` (the theorem's setting, which must pass) with a ``control`` (a setting
outside the theorem's hypotheses, measured by the same comparison, which must fail). A claim is
verified only when the check passes and the control fails, so a comparison too loose to ever
fail is caught.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Callable

RELATIONS = {
    "close": "|measured - predicted| <= tolerance",
    "below": "measured <= bound",
    "above": "measured >= bound",
}


@dataclass(frozen=True)
class Settings:
    """Effort and seeds of a run: ``full`` uses more seeds and larger sizes, ``seed`` shifts all seeds."""

    full: bool = False
    seed: int = 0


@dataclass(frozen=True)
class Outcome:
    """One measurement compared with its prediction.

    ``relation`` is ``"close"`` (``|measured - predicted| <= tolerance``), ``"below"``
    (``measured <= predicted``, the bound) or ``"above"`` (``measured >= predicted``).
    ``details`` contains the data behind the number (arrays for figures, values for the text).
    The command line does not print it.
    """

    measured: float
    predicted: float
    relation: str
    tolerance: float = 0.0
    details: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(f"relation must be one of {sorted(RELATIONS)}, got {self.relation!r}")

    @classmethod
    def close(cls, measured, predicted, tolerance, **details):
        return cls(float(measured), float(predicted), "close", float(tolerance), details)

    @classmethod
    def below(cls, measured, bound, **details):
        return cls(float(measured), float(bound), "below", 0.0, details)

    @classmethod
    def above(cls, measured, bound, **details):
        return cls(float(measured), float(bound), "above", 0.0, details)

    @property
    def passed(self):
        if math.isnan(self.measured):
            return False
        if self.relation == "close":
            return abs(self.measured - self.predicted) <= self.tolerance
        if self.relation == "below":
            return self.measured <= self.predicted
        return self.measured >= self.predicted

    def describe(self):
        """Return the comparison as text, for example ``0.0012 <= 0.01``."""
        if self.relation == "close":
            return f"|{self.measured:.4g} - {self.predicted:.4g}| <= {self.tolerance:.3g}"
        sign = "<=" if self.relation == "below" else ">="
        return f"{self.measured:.4g} {sign} {self.predicted:.4g}"


@dataclass(frozen=True)
class Claim:
    """A statement of the book with its check, its negative control and where it comes from."""

    id: str  # stable identifier, "chapter.short-name"
    result: str  # the result of Zhang et al. (ICLR 2026) it checks, e.g. "Corollary 3.2"
    chapter: str  # book chapter file name without extension
    statement: str  # what must hold, in one sentence
    tolerance_source: str  # where the tolerance comes from
    control_setting: str  # the setting outside the hypotheses in which the check must fail
    check: Callable[[Settings], Outcome]
    control: Callable[[Settings], Outcome]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a claim's check and of its negative control."""

    claim: Claim
    check: Outcome
    control: Outcome
    seconds: float

    @property
    def passed(self):
        return self.check.passed and not self.control.passed

    def summary(self):
        """Return a one-paragraph report, used as the assertion message in the chapters."""
        status = "verified" if self.passed else "FAILED"
        return (
            f"{self.claim.id} ({self.claim.result}) {status}: {self.claim.statement}\n"
            f"  check:   {self.check.describe()} -> {'pass' if self.check.passed else 'fail'}\n"
            f"  control: {self.control.describe()} -> {'pass' if self.control.passed else 'fail'}"
            f" ({self.claim.control_setting}; must fail)\n"
            f"  tolerance: {self.claim.tolerance_source}"
        )


_CLAIMS: dict[str, Claim] = {}


def register(claim):
    """Add ``claim`` to the registry; raises ``ValueError`` on a duplicate id."""
    if claim.id in _CLAIMS:
        raise ValueError(f"claim id {claim.id!r} is registered twice")
    _CLAIMS[claim.id] = claim
    return claim


def claim(id, result, chapter, statement, tolerance_source, control_setting):
    """Decorate a function ``(settings, control: bool) -> Outcome`` and register it as a claim.

    The function measures the theorem's setting when ``control`` is false and the negative
    control's setting when it is true, with the same comparison in both.
    """

    def decorate(measure):
        register(
            Claim(
                id=id,
                result=result,
                chapter=chapter,
                statement=statement,
                tolerance_source=tolerance_source,
                control_setting=control_setting,
                check=lambda settings: measure(settings, control=False),
                control=lambda settings: measure(settings, control=True),
            )
        )
        return measure

    return decorate


def all_claims():
    """Return every registered claim, in registration order."""
    return list(_CLAIMS.values())


def get(claim_id):
    """Return the claim ``claim_id``; raises ``KeyError`` listing the known ids."""
    try:
        return _CLAIMS[claim_id]
    except KeyError:
        known = ", ".join(sorted(_CLAIMS))
        raise KeyError(f"unknown claim id {claim_id!r}; known ids: {known}") from None


def evaluate(claim_id, settings=None):
    """Run the check and the negative control of ``claim_id`` and return a ``Verdict``."""
    settings = settings or Settings()
    claim_ = get(claim_id)
    start = time.perf_counter()
    check = claim_.check(settings)
    control = claim_.control(settings)
    return Verdict(claim_, check, control, time.perf_counter() - start)


def verify(claim_id, settings=None):
    """Evaluate ``claim_id`` and raise ``AssertionError`` with its summary unless it is verified.

    The chapters call this, so a claim that fails stops the book build.
    """
    verdict = evaluate(claim_id, settings)
    if not verdict.passed:
        raise AssertionError(verdict.summary())
    return verdict


def markdown_table(verdicts):
    """Return a Markdown table of verdicts: claim, check, negative control and verdict."""
    lines = [
        "| claim | check | negative control (must fail) | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for v in verdicts:
        check = f"{v.check.describe()}: {'passes' if v.check.passed else 'fails'}"
        control = f"{v.claim.control_setting}: {v.control.describe()}: {'passes' if v.control.passed else 'fails'}"
        cells = [f"`{v.claim.id}`", check, control, "verified" if v.passed else "FAILED"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)
