"""Benchmark specs: schema and validated loading."""

from harness.spec.load import load_spec, validate_spec
from harness.spec.schema import BootstrapSpec, ExplainSpec, PluginSpec, Spec

__all__ = ["BootstrapSpec", "ExplainSpec", "PluginSpec", "Spec", "load_spec", "validate_spec"]
