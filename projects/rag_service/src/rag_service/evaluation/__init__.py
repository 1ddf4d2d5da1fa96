"""Retrieval evaluation: BEIR folders, graded metrics, significance tests, results as JSON."""
