"""Publishing API: draft articles, publish them, list what is published."""

__version__ = "0.1.0"
