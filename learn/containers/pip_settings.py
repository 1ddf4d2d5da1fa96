"""This machine's pip settings, carried into a build or a container.

pip here is configured by files and PIP_* variables that name local wheel folders, file://
indexes and the CA bundle of the egress proxy; a pip inside a container sees none of them.
`host_pip_mounts` merges the settings into one pip.conf and mounts each local path they name.
"""

from __future__ import annotations

import configparser
import os
import sys
import urllib.parse
from pathlib import Path

from learn.containers.podman import Mount, cache_dir, write_if_changed

#: pip settings whose values may name local files, folders or file:// indexes.
_PIP_PATH_KEYS = ("find-links", "index-url", "extra-index-url", "cert", "client-cert", "constraint")


def pip_config_files() -> list[Path]:
    """pip's configuration files on this machine, in the order pip reads them (later wins)."""
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    home = Path.home()
    user_config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    candidates = [
        *(Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(":") if d),
        Path("/etc/pip.conf"),
        home / ".pip" / "pip.conf",
        user_config / "pip" / "pip.conf",
        Path(sys.prefix) / "pip.conf",
    ]
    if os.environ.get("PIP_CONFIG_FILE") and os.environ["PIP_CONFIG_FILE"] != os.devnull:
        candidates.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return [path for path in candidates if path.is_file()]


def host_pip_config() -> configparser.RawConfigParser:
    """What pip here is configured with: its config files merged, PIP_* variables on top."""
    config = configparser.RawConfigParser()
    config.read(pip_config_files())
    for key, value in sorted(os.environ.items()):
        if key.startswith("PIP_") and key != "PIP_CONFIG_FILE":
            if not config.has_section("global"):
                config.add_section("global")
            config.set("global", key[4:].lower().replace("_", "-"), value)
    return config


def _local_paths(config: configparser.RawConfigParser) -> list[Path]:
    """Existing host paths the settings name; a PEP 503 `simple/` folder brings its parent
    (index pages there link to ../../files/...)."""
    paths: list[Path] = []
    for section in config.sections():
        for key in _PIP_PATH_KEYS:
            for item in config.get(section, key, fallback="").split():
                if item.startswith("file://"):
                    item = urllib.parse.unquote(urllib.parse.urlparse(item).path)
                if not item.startswith("/"):
                    continue  # a URL: reachable, or not, through the container's network
                path = Path(item)
                if path.is_dir() and path.name == "simple":
                    path = path.parent
                if path.exists():
                    paths.append(path)
    roots: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(root) for root in roots):
            roots.append(path)
    return roots


def host_pip_mounts() -> list[Mount]:
    """Mounts that let a pip in a container resolve packages as pip does on this machine.

    The merged settings go to /etc/pip.conf (read by every pip, whatever the user); each local
    folder or file they name (find-links wheels, file:// indexes, the CA bundle that lets HTTPS
    through this machine's egress proxy, a constraints file) is mounted read-only at the same
    path. With `podman build --volume`, a stage that runs a RUN keeps the empty mount points.
    """
    config = host_pip_config()
    lines = []
    for section in config.sections():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in config.items(section)]
    text = "# This machine's pip settings, merged by learn/containers/.\n" + "\n".join(lines)
    conf = write_if_changed(cache_dir() / "pip.conf", text + "\n")
    return [Mount(conf, "/etc/pip.conf"), *(Mount(p, str(p)) for p in _local_paths(config))]
