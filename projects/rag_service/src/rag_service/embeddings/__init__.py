"""MiniLM sentence embeddings in fp32, int8 and ONNX, with length batching and a disk cache.

Importing this package costs numpy only: torch, transformers and onnxruntime load when an
encoder is made (`make_encoder`).
"""

from rag_service.embeddings.encoder import (
    DIM,
    MAX_TOKENS,
    MODEL_ID,
    PRECISIONS,
    EncodedQueries,
    Encoder,
    l2_normalise,
    make_encoder,
    mean_pool,
    model_path,
)

__all__ = [
    "DIM",
    "MAX_TOKENS",
    "MODEL_ID",
    "PRECISIONS",
    "EncodedQueries",
    "Encoder",
    "l2_normalise",
    "make_encoder",
    "mean_pool",
    "model_path",
]
