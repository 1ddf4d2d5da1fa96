#!/usr/bin/env bash
# Run HERE (a machine with PyPI), before `make gpu-check` on the device machine:
#   PY=/path/to/python bash benchmarks/gpu_prepare.sh   (an interpreter with rag_service)
#
# The device machine's python3 has torch, transformers and accelerate but neither `gguf` (to
# read SmolLM2's weights) nor `bitsandbytes` (int8/nf4), and reaches no registry; a call may
# carry 64 MiB with the working tree. So this stages, under .model-cache/gpu/ (git-ignored):
#   site/   gguf and bitsandbytes unpacked from their wheels (dist-info kept: transformers checks
#           installed versions through it), bitsandbytes cut to its CPU and CUDA 13.x libraries
#           (the device's torch is built for CUDA 13.0): ~9 MB instead of 129 MB unpacked;
#   part1/, part2/  the 98 MB SmolLM2 GGUF split in two, each small enough for one call, and
#           its sha256, so the device can rebuild and check it (see gpu_check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# the project's own .venv (make install) when there is one, else the python3 on PATH
if [ -z "${PY:-}" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
BNB_VERSION=${BNB_VERSION:-0.50.2}
GGUF_VERSION=${GGUF_VERSION:-0.19.0}
STAGE=.model-cache/gpu
rm -rf "$STAGE" && mkdir -p "$STAGE/wheels" "$STAGE/site" "$STAGE/part1" "$STAGE/part2"
# The device's python is 3.12 on x86-64 (KINDS.md); both wheels are py3-none.
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$STAGE/wheels" "bitsandbytes==$BNB_VERSION" "gguf==$GGUF_VERSION"
for wheel in "$STAGE"/wheels/*.whl; do
    "$PY" -m zipfile -e "$wheel" "$STAGE/site"
done
find "$STAGE/site/bitsandbytes" -name 'libbitsandbytes_*.so' \
    ! -name 'libbitsandbytes_cpu.so' ! -name 'libbitsandbytes_cuda13*.so' -delete
rm -rf "$STAGE/wheels"
GGUF=$("$PY" -c 'from rag_service.generation.model_files import gguf_path; print(gguf_path())')
sha256sum "$GGUF" | cut -d' ' -f1 > "$STAGE/part2/sha256"
head -c $((50 * 1024 * 1024)) "$GGUF" > "$STAGE/part1/gguf.1"
tail -c +$((50 * 1024 * 1024 + 1)) "$GGUF" > "$STAGE/part2/gguf.2"
du -sh "$STAGE"/*
