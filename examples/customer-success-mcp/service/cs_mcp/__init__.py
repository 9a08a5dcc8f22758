"""Customer-success MCP server: account health tools over streamable HTTP."""

__version__ = "0.1.0"
