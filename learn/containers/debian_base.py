"""The Debian base image, bootstrapped with debootstrap from the mirror apt already uses.

No image registry is reachable here, so `localhost/bookworm-min` is made on the machine, once
per recipe (a label holds the recipe's hash), and every Dockerfile's base build argument can
point at it. A file lock makes concurrent callers wait for one bootstrap.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learn.containers.podman import (
    ContainerError,
    cache_dir,
    image_labels,
    progress,
    require_podman,
    stream,
)

#: The bootstrapped base image: Debian 12 minbase plus what a Python image needs.
BASE_IMAGE = "localhost/bookworm-min"
BASE_SUITE = "bookworm"
#: Packages on top of debootstrap's minbase. Bookworm's python3 is 3.11, like python:3.11-slim;
#: python3-venv brings ensurepip (Dockerfiles make a venv), ca-certificates lets pip use HTTPS.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
#: Bump when `_bootstrap` changes what it puts into the image: the cached base is then rebuilt.
BASE_REVISION = 1
#: Image label holding the recipe version the base was made from.
RECIPE_LABEL = "org.ai-architect-workbook.base-recipe"


@dataclass(frozen=True)
class AptSource:
    """One deb822 stanza of the host's apt sources (the one-line format is converted)."""

    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None

    def deb822(self) -> str:
        lines = [
            "Types: deb",
            f"URIs: {' '.join(self.uris)}",
            f"Suites: {' '.join(self.suites)}",
            f"Components: {' '.join(self.components)}",
        ]
        if self.signed_by:
            lines.append(f"Signed-By: {self.signed_by}")
        return "\n".join(lines) + "\n"


def debian_sources(suite: str = BASE_SUITE, apt_dir: Path = Path("/etc/apt")) -> list[AptSource]:
    """The host's apt sources for `suite` and its -updates/-security suites, mirror first.

    Read from sources.list.d/*.sources (deb822), *.list and sources.list, i.e. what apt reads.
    Raises ContainerError when no source serves `suite` itself.
    """
    sources: list[AptSource] = []
    files = sorted((apt_dir / "sources.list.d").glob("*.sources"))
    for path in files:
        sources += _parse_deb822(path.read_text())
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            sources += _parse_one_line(path.read_text())
    ours = [s for s in sources if any(x == suite or x.startswith(f"{suite}-") for x in s.suites)]
    ours.sort(key=lambda s: suite not in s.suites)  # the mirror serving the suite itself first
    if not ours or suite not in ours[0].suites:
        raise ContainerError(
            f"no apt source for Debian {suite} in {apt_dir}/sources.list.d/*.sources or "
            f"sources.list: add one (e.g. http://deb.debian.org/debian) to bootstrap the base"
        )
    return ours


def _parse_deb822(text: str) -> list[AptSource]:
    stanzas: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if not line.strip():
            stanzas.append({})
        elif line[0].isspace() and stanzas[-1]:  # a continuation line (multi-line fields)
            key = list(stanzas[-1])[-1]
            stanzas[-1][key] += " " + line.strip()
        else:
            key, _, value = line.partition(":")
            stanzas[-1][key.strip().lower()] = value.strip()
    return [
        AptSource(
            tuple(stanza.get("uris", "").split()),
            tuple(stanza.get("suites", "").split()),
            tuple(stanza.get("components", "").split()),
            stanza.get("signed-by"),
        )
        for stanza in stanzas
        if "deb" in stanza.get("types", "").split() and stanza.get("enabled", "yes") != "no"
    ]


def _parse_one_line(text: str) -> list[AptSource]:
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        options = re.search(r"\[([^\]]*)\]", line)
        words = re.sub(r"\[[^\]]*\]", " ", line).split()
        if len(words) < 3 or words[0] != "deb":
            continue
        signed = re.search(r"signed-by=(\S+)", options.group(1)) if options else None
        found.append(
            AptSource((words[1],), (words[2],), tuple(words[3:]), signed and signed.group(1))
        )
    return found


def base_recipe_version(sources: Sequence[AptSource]) -> str:
    """A short hash of everything the base is made from: a change means a new base."""
    recipe = {
        "revision": BASE_REVISION,
        "suite": BASE_SUITE,
        "packages": BASE_PACKAGES,
        "sources": [s.deb822() for s in sources],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def ensure_base_image(name: str = BASE_IMAGE) -> str:
    """Make sure `name` is the current recipe's base image; return its name.

    The first call on a machine bootstraps it (1-4 minutes, by the mirror's speed and the
    machine's load); later calls only inspect it (under a second).
    A file lock makes concurrent callers wait for one bootstrap instead of running two.
    """
    require_podman()
    sources = debian_sources()
    version = base_recipe_version(sources)
    if (image_labels(name) or {}).get(RECIPE_LABEL) == version:
        return name
    lock_path = cache_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (image_labels(name) or {}).get(RECIPE_LABEL) != version:
            _bootstrap(name, version, sources)
    return name


def _bootstrap(name: str, version: str, sources: Sequence[AptSource]) -> None:
    """debootstrap a minbase root file system, tidy it, and `podman import` it as `name`."""
    mirror = sources[0].uris[0]
    workdir = Path(tempfile.mkdtemp(prefix="bookworm-min-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    start = time.perf_counter()
    progress(f"bootstrapping {name} from {mirror} with debootstrap (1-4 minutes, once)")
    try:
        stream(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(rootfs),
                mirror,
            ],
            label="debootstrap",
            timeout=1200,
            env=os.environ,
        )
        _tidy_rootfs(rootfs, sources)
        progress(f"importing {rootfs} as {name}")
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "--one-file-system", "-c", "."],
            stdout=subprocess.PIPE,
        )
        try:
            changes = [
                f"LABEL {RECIPE_LABEL}={version}",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "ENV LANG=C.UTF-8",
                'CMD ["/bin/bash"]',
            ]
            flags = [arg for change in changes for arg in ("--change", change)]
            stream(
                ["podman", "import", *flags, "-", name],
                label="import",
                timeout=600,
                stdin=tar.stdout,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise ContainerError(f"tar of {rootfs} failed (exit {tar.returncode})")
    finally:
        _remove_tree(workdir)
    progress(f"{name} ready in {time.perf_counter() - start:.0f} s")


def _tidy_rootfs(rootfs: Path, sources: Sequence[AptSource]) -> None:
    """Drop the host's identity and apt's caches; give apt the host's Debian sources."""
    for relative in ("etc/hostname", "etc/resolv.conf", "etc/apt/sources.list"):
        (rootfs / relative).unlink(missing_ok=True)
    for pattern in ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
    kept = [
        AptSource(s.uris, s.suites, s.components, s.signed_by)
        if s.signed_by and (rootfs / s.signed_by.lstrip("/")).is_file()
        else AptSource(s.uris, s.suites, s.components)
        for s in sources
    ]
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        "\n".join(s.deb822() for s in kept)
    )


def _mounts_under(path: Path) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(f"{path}/")]


def _remove_tree(path: Path) -> None:
    """rm -r a bootstrap folder, but never through a mount a killed debootstrap left (/proc)."""
    for mount in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)
    if _mounts_under(path):
        raise ContainerError(f"{path} still has mounts under it; unmount them, then remove it")
    shutil.rmtree(path, ignore_errors=True)
