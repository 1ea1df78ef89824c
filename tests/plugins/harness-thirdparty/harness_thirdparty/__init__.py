"""harness-thirdparty: an example plugin distribution for the XAI-in-medicine harness."""

__version__ = "0.1.0"
