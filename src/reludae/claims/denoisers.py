"""Claims of the denoisers chapter."""

from .registry import Outcome, claim  # noqa: F401
