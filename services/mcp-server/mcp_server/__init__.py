"""MCP server exposing the store inventory API as tools."""

__version__ = "0.1.0"
