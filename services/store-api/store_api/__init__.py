"""Store inventory API: products and stock levels kept in PostgreSQL."""

__version__ = "0.1.0"
