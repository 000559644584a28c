"""Claims of the memorization chapter."""

from .registry import Outcome, claim  # noqa: F401
