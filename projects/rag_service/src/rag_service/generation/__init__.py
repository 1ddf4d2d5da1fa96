"""Answer generation with SmolLM2-135M-Instruct, the same weights run several ways.

- `llamacpp.LlamaCppGenerator`: the Q4_1 GGUF natively quantized in llama.cpp (CPU).
- `hf.TransformersGenerator`: the same GGUF dequantised to fp32 in transformers, the CPU
  baseline.
Both stream text pieces and count tokens with their own tokenizer; `base.collect` times a
stream (time to first token, tokens/s) the same way for each.
"""

from rag_service.generation.base import Generation, Generator, collect
from rag_service.generation.model_files import GGUF_FILE, MODEL_PACKAGE, gguf_path

__all__ = ["GGUF_FILE", "MODEL_PACKAGE", "Generation", "Generator", "collect", "gguf_path"]
