"""Container image checks: Containerfile lint and structure, and real builds (marker ``image``)."""
