"""LMAO pre-training of spaCy CNN encoders, and the experiments that measure it."""

__version__ = "0.1.0"
