"""Localisation metrics: attributions against ground-truth masks (or token rationales), forward-free and batched."""
