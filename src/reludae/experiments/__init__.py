"""Experiments behind the chapters: each returns plain numbers and arrays for claims and figures."""
