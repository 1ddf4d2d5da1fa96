"""Evaluation: retrieval (BEIR folders, graded metrics, significance tests) and answers
(groundedness, relevance, a G-Eval judge, agreement with labels)."""
