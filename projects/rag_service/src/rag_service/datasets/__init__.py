"""Judged query sets built from data shipped with Python and gensim."""
