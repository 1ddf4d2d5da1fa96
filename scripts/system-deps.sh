#!/usr/bin/env bash
# Install the Debian packages the test suite needs, when missing: chromium (the book's browser
# test), npm (fetches MathJax so the book renders math offline), and podman with runc,
# debootstrap and buildah (tests/test_images.py builds and runs real images; learn/containers/
# bootstraps their Debian base; only as root, since those tests need root and skip otherwise),
# nginx and prometheus (mlops_pipeline's canary router, metrics store and `promtool` rule tests),
# wrk (mlops_pipeline's serving benchmark).
# Needs root or sudo; without either it explains what to install and exits non-zero. Quick and
# silent when everything is present.
set -euo pipefail

missing=()
need() { # need COMMAND PACKAGE: queue PACKAGE when COMMAND is not on PATH (or in /usr/sbin)
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$2")
}
need chromium chromium
need npm npm
need git git
need make make
need nginx nginx
need prometheus prometheus
need promtool prometheus
need wrk wrk
if [ "$(id -u)" -eq 0 ]; then # the image tests run as root only (rootful podman, debootstrap)
  need podman podman
  need runc runc
  need buildah buildah
  need debootstrap debootstrap
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "system-deps: installing ${missing[*]} with apt-get"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "system-deps: need root to install: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
