"""Cellucid Desktop: a desktop app around the Cellucid single-cell viewer."""

__version__ = "0.1.0"
