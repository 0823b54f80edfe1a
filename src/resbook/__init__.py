"""resbook: the helper package of the executable textbook "Why Residual Connections Work"."""
__version__ = "0.1.0"
