"""fxplain's version, where every layer can read it (stored runs and saved files record it)."""

__version__ = "0.1.0"
