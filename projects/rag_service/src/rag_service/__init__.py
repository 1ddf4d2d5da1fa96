"""Retrieval for a RAG service: chunks, embeddings, vector and lexical indexes, fusion, eval."""
