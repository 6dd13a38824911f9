"""aiventbus: a local-first AI control plane."""

__version__ = "0.1.0"
