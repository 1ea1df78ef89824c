"""Sanity checks: an explanation should change when the model or the target changes."""
