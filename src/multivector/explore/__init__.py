"""Exploration over ensembles: designs, executors, the DuckDB store and the analyses that read it."""
