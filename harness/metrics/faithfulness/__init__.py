"""Faithfulness metrics: removing what an attribution calls relevant should change the output.

Modules (registered lazily in :mod:`harness.metrics`): ``deletion_insertion``
(RISE deletion / insertion AUC), ``pixel_flipping`` and ``region_perturbation``
(AOPC), ``faithfulness_correlation``, ``road``, ``monotonicity`` and ``eraser``
(comprehensiveness and sufficiency of token attributions). All of
them evaluate perturbed copies through :mod:`harness.metrics._engine`.
Nothing heavy is imported here.
"""
