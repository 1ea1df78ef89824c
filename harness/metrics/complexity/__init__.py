"""Complexity metrics: how concentrated an attribution is, forward-free and batched."""
