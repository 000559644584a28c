"""The book's claims. Importing this package registers every claim of every chapter."""

from .registry import Claim, Outcome, Settings, Verdict, all_claims, claim, evaluate, get, markdown_table, verify

from . import blocks, denoisers, digits, expected, generalization, linear_ae, memorization, transition  # noqa: E402,F401  (registration side effect)

__all__ = ["Claim", "Outcome", "Settings", "Verdict", "all_claims", "claim", "evaluate", "get", "markdown_table", "verify"]
