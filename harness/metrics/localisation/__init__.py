"""Localisation metrics: attributions against ground-truth masks, forward-free and batched."""
