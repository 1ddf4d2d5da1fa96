"""`python -m learn.containers base`: make sure the base image exists; print its name."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from learn.containers.debian_base import ensure_base_image
from learn.containers.podman import ContainerError


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m learn.containers base`: make sure the base image exists; print its name."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["base"]:
        print("usage: python -m learn.containers base", file=sys.stderr)
        return 2
    try:
        print(ensure_base_image())
    except ContainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
