"""textstats: character, word and line counts of a text, over HTTP."""

__version__ = "0.1.0"
