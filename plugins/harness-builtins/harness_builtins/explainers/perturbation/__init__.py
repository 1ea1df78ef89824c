"""Perturbation explainers through Captum: LIME, KernelSHAP and Occlusion."""
