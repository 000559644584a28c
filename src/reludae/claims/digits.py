"""Claims of the digits chapter."""

from .registry import Outcome, claim  # noqa: F401
