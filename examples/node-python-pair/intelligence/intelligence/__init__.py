"""The pair's intelligence service: sentiment and keywords of a text."""

__version__ = "0.1.0"
