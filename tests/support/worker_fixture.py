"""Worker process fixture (filled by the pipeline work)."""
