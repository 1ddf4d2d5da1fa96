"""Shared by the deploy tests: deploy/check.py loaded as a module, and deliberately broken
inputs that each validator must reject (a check that accepts everything proves nothing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"


def _load_check() -> ModuleType:
    """deploy/check.py is a script beside the artefacts, not part of the package."""
    spec = importlib.util.spec_from_file_location("deploy_check", DEPLOY / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


check = _load_check()

#: A Deployment checkov must fail: privileged, root, escalation allowed, no probes, no limits.
BROKEN_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: broken
spec:
  replicas: 1
  selector:
    matchLabels: {app: broken}
  template:
    metadata:
      labels: {app: broken}
    spec:
      containers:
        - name: broken
          image: example/broken:latest
          securityContext:
            privileged: true
            runAsUser: 0
            allowPrivilegeEscalation: true
"""

#: Terraform checkov must fail: a mutable, unscanned repository and an admin policy.
BROKEN_TERRAFORM = """\
resource "aws_ecr_repository" "broken" {
  name                 = "broken"
  image_tag_mutability = "MUTABLE"
}

resource "aws_iam_policy" "broken" {
  name = "broken"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }]
  })
}
"""
