"""Built-in explainers, one folder per family: cam, gradient, propagation, perturbation, control."""
