"""Shared test set-up: every Hugging Face library offline before anything imports one, and
OpenMP threads that sleep when idle."""

from __future__ import annotations

import os

from rag_service import offline

offline.apply()
# FAISS's OpenMP threads spin while they wait by default; on a 2-core machine running two test
# workers that starves the threads doing the work (an IVF-PQ build took 73 s instead of 26 s).
# Read when the OpenMP runtime starts, so before faiss or torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
