"""Robustness metrics: how much the explanation moves under small input perturbations."""
