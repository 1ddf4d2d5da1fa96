"""Grading: run a phase's checkpoint tests against a target and report per checkpoint."""
