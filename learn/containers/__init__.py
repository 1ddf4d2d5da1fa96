"""Container images with podman, on machines with no Docker engine and no image registry.

Every project's Dockerfile takes its base image as a build argument (python:3.11-slim for
users). The workbook builds those images for real with Debian's podman, from a Debian base it
bootstraps itself from the mirror apt already uses, and runs them on loopback. This module is
that one path, shared by every phase's images:

- `ensure_base_image()`: localhost/bookworm-min, made once per machine and recipe;
- `build_image()`: `podman build` of a context, with build arguments and read-only mounts;
- `running_container()`: `podman run` published on 127.0.0.1 only, always `podman rm -f`-ed;
- `host_pip_mounts()`: this machine's pip settings (local wheels and indexes, the CA bundle of
  the egress proxy) for a pip inside a build or a container;
- `require_podman()`: a clear error naming the missing package and the apt command.

Three modules, one job each: `podman` (settings, errors, builds, loopback containers),
`debian_base` (the bootstrapped base image), `pip_settings` (this machine's pip, carried into
a container). Standard library only, nothing heavy at import: `learn` and test collection stay
fast.
"""

from learn.containers.debian_base import (
    BASE_IMAGE,
    AptSource,
    base_recipe_version,
    debian_sources,
    ensure_base_image,
)
from learn.containers.pip_settings import host_pip_config, host_pip_mounts, pip_config_files
from learn.containers.podman import (
    APT_INSTALL,
    CONTAINERS_CONF,
    Container,
    ContainerError,
    ContainersUnavailable,
    Mount,
    build_image,
    image_id,
    image_labels,
    podman,
    require_podman,
    running_container,
)

__all__ = [
    "APT_INSTALL",
    "BASE_IMAGE",
    "CONTAINERS_CONF",
    "AptSource",
    "Container",
    "ContainerError",
    "ContainersUnavailable",
    "Mount",
    "base_recipe_version",
    "build_image",
    "debian_sources",
    "ensure_base_image",
    "host_pip_config",
    "host_pip_mounts",
    "image_id",
    "image_labels",
    "pip_config_files",
    "podman",
    "require_podman",
    "running_container",
]
