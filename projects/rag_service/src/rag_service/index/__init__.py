"""Vector indexes behind one interface: FAISS (exact, HNSW, IVF-PQ) and pgvector (HNSW, IVFFlat)."""
