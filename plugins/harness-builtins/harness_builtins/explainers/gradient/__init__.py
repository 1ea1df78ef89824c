"""Gradient explainers through Captum: SmoothGrad, Integrated Gradients, Input x Gradient."""
