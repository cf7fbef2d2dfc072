"""Code-generating backends: each takes a planned Model and a Target and writes an artifact directory."""
