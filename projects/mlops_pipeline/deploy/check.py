"""Offline checks of the deploy artefacts, with the ecosystem's own tools.

No cluster and no cloud account exist here, so what can be checked is checked before anything
is applied: kustomize renders every kustomization (`kubectl kustomize`), the rendered objects
are validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown
fields are errors) and the Argo Rollouts objects against the CRDs' published openAPIV3Schema
(vendored in k8s/crds-schemas/), checkov scans the manifests and the Terraform, and the
Terraform is parsed (python-hcl2) so tests can assert on what it grants. The tests
(tests/test_k8s_manifests.py, tests/test_terraform.py) use these functions; run as a script it
prints one line per check and exits non-zero on any problem:

    python deploy/check.py            # render, validate, checkov (k8s and terraform)
    python deploy/check.py --no-checkov

checkov runs from its own virtual environment (it pins packaging<24 and more, see
ENVIRONMENT.md): `$CHECKOV`, else `<project>/.tools/checkov/bin/checkov` (`make tools`), else
`checkov` on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
PROJECT = DEPLOY.parent
K8S = DEPLOY / "k8s"
TERRAFORM = DEPLOY / "terraform" / "aws"
TERRAFORM_EXAMPLE = TERRAFORM / "examples" / "complete"
SKIPS_FILE = DEPLOY / "checkov-skips.yaml"

#: Every kustomization, by name: what is rendered, validated and (except base) scanned.
KUSTOMIZATIONS: dict[str, Path] = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
    "monitoring": K8S / "monitoring",
    "backends": K8S / "backends",
}
#: The ones a cluster applies (namespaced): checkov scans these. base has no namespace on
#: purpose (overlays set it), so it would only trip checkov's "default namespace" check.
DEPLOYED = ("dev", "prod", "monitoring", "backends")
#: The Kubernetes minor version the schemas are taken from (EKS and kind both run it).
K8S_VERSION = "1.30"
#: Custom resources validated against a vendored CRD: (apiVersion, kind) -> file.
CRD_FILES: dict[tuple[str, str], Path] = {
    ("argoproj.io/v1alpha1", "Rollout"): K8S / "crds-schemas" / "rollout-crd.yaml",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): K8S
    / "crds-schemas"
    / "analysis-template-crd.yaml",
}
FRAMEWORKS = ("kubernetes", "terraform")
MAKE_TOOLS_HINT = (
    "run `make tools` in projects/mlops_pipeline (creates .tools/checkov, checkov's own venv) "
    "or set CHECKOV to a checkov executable"
)


class CheckError(RuntimeError):
    """A check could not run (a tool is missing or failed); the message says what to do."""


# --- rendering -------------------------------------------------------------------------------


def kubectl() -> str:
    """The kubectl to render with: $KUBECTL, else kubectl on PATH, else /usr/bin/kubectl."""
    explicit = os.environ.get("KUBECTL")
    found = explicit or shutil.which("kubectl") or "/usr/bin/kubectl"
    if not Path(found).is_file():
        raise CheckError(f"kubectl not found ({found}); kustomize rendering needs kubectl >= 1.27")
    return found


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize directory` renders (offline: kustomize is built in)."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise CheckError(f"kubectl kustomize {directory} failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_all() -> dict[str, list[dict[str, Any]]]:
    """Every kustomization of KUSTOMIZATIONS, rendered."""
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}


# --- schema validation -----------------------------------------------------------------------


def describe(doc: Mapping[str, Any]) -> str:
    """`Kind/name` of an object, for messages."""
    return f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"


def validate_builtin(doc: Mapping[str, Any], version: str = K8S_VERSION) -> list[str]:
    """Problems of a core object against Kubernetes `version`'s schema (strict: unknown
    fields are errors, as `kubectl apply --validate=strict` makes them). kubernetes-validate
    stops at the first problem, so at most one message."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(dict(doc), version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "<root>"
        return [f"{describe(doc)}: {where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{describe(doc)}: no Kubernetes {version} schema for {doc.get('apiVersion')}"]
    return []


#: libyaml's loader where PyYAML has it: the vendored CRDs are 160 kB each.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def crd_json_schema(crd_file: Path) -> dict[str, Any]:
    """The served version's openAPIV3Schema of a CRD file, as a strict JSON Schema.

    The API server prunes fields a structural schema does not declare, and rejects them with
    strict field validation; jsonschema would accept them. So every object schema that lists
    `properties` and neither `additionalProperties` nor `x-kubernetes-preserve-unknown-fields`
    gets `additionalProperties: false`, and `nullable: true` admits null.
    """
    crd = yaml.load(crd_file.read_text(), Loader=_FAST_LOADER)
    served = [v for v in crd["spec"]["versions"] if v.get("served")]
    if len(served) != 1:
        raise CheckError(f"{crd_file}: expected one served version, found {len(served)}")
    return _strict(served[0]["schema"]["openAPIV3Schema"])


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def validate_custom(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every problem of a custom resource against its CRD's JSON schema; its metadata is
    checked as real ObjectMeta (the CRD schema only says `type: object`)."""
    import jsonschema

    problems = [
        f"{describe(doc)}: {'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(
            jsonschema.Draft7Validator(schema).iter_errors(dict(doc)),
            key=lambda e: list(map(str, e.absolute_path)),
        )
    ]
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
    problems += [
        p.replace("ConfigMap/", f"{doc.get('kind')}/", 1) for p in validate_builtin(carrier)
    ]
    return problems


def validate(docs: Iterable[Mapping[str, Any]], version: str = K8S_VERSION) -> list[str]:
    """Problems of rendered objects: core kinds against Kubernetes, CRDs against CRD_FILES.
    A custom kind with no vendored schema is itself a problem (never passed unchecked)."""
    problems: list[str] = []
    for doc in docs:
        key = (doc.get("apiVersion", ""), doc.get("kind", ""))
        if key in CRD_FILES:
            problems += validate_custom(doc, crd_json_schema(CRD_FILES[key]))
        elif _is_custom(key[0]):
            problems.append(f"{describe(doc)}: {key[0]} is a custom resource with no vendored CRD")
        else:
            problems += validate_builtin(doc, version)
    return problems


def _is_custom(api_version: str) -> bool:
    """Custom API groups have a dot and are not Kubernetes' own `*.k8s.io` (core groups such
    as `apps` or `policy` have no dot; the core group itself is empty: `v1`)."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." in group and not group.endswith(".k8s.io")


# --- checkov ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One failed checkov check on one resource."""

    check_id: str
    name: str
    resource: str
    file: str

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.file}): {self.name}"


def find_checkov() -> str:
    """checkov's executable: $CHECKOV (must exist), else the project's tool venv, else PATH."""
    explicit = os.environ.get("CHECKOV")
    if explicit:
        if not Path(explicit).is_file():
            raise CheckError(f"CHECKOV={explicit} does not exist; {MAKE_TOOLS_HINT}")
        return explicit
    local = PROJECT / ".tools" / "checkov" / "bin" / "checkov"
    if local.is_file():
        return str(local)
    on_path = shutil.which("checkov")
    if on_path:
        return on_path
    raise CheckError(f"checkov not found; {MAKE_TOOLS_HINT}")


def run_checkov(directory: Path, framework: str, timeout: float = 600) -> list[Finding]:
    """Every failed check when checkov scans `directory` with one framework, offline.

    No --skip-check here: the skip list is applied (and checked for staleness) by the caller,
    so a skip that no longer matches anything shows up instead of hiding.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    command = [
        find_checkov(),
        "--directory",
        str(directory),
        "--framework",
        framework,
        "--skip-download",
        "--quiet",
        "--compact",
        "--output",
        "json",
    ]
    # checkov is a tool in its own venv: our PYTHONPATH (a fork's site dir, src/) must not
    # shadow its pinned packages.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode not in (0, 1):
        raise CheckError(f"checkov exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise CheckError(f"checkov printed no JSON: {done.stdout[:500]!r}") from None
    return list(_findings(report))


def _findings(report: Any) -> Iterator[Finding]:
    reports = report if isinstance(report, list) else [report]
    for one in reports:
        for failed in one.get("results", {}).get("failed_checks", []):
            yield Finding(
                failed["check_id"], failed["check_name"], failed["resource"], failed["file_path"]
            )


def load_skips(path: Path = SKIPS_FILE) -> dict[str, dict[str, str]]:
    """framework -> {check id: reason}; every skip must carry a reason of some substance."""
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - set(FRAMEWORKS)
    if unknown:
        raise CheckError(f"{path}: unknown frameworks {sorted(unknown)}")
    skips: dict[str, dict[str, str]] = {}
    for framework in FRAMEWORKS:
        skips[framework] = {}
        for check_id, entry in (data.get(framework) or {}).items():
            reason = (entry or {}).get("reason", "") if isinstance(entry, dict) else ""
            if len(reason.split()) < 8:
                raise CheckError(f"{path}: {framework} {check_id} needs a reason (a sentence)")
            skips[framework][check_id] = reason
    return skips


def unexpected(findings: Iterable[Finding], skipped: Mapping[str, str]) -> list[Finding]:
    """Findings whose check is not on the skip list."""
    return [f for f in findings if f.check_id not in skipped]


def stale(findings: Iterable[Finding], skipped: Mapping[str, str]) -> list[str]:
    """Skip-list entries that no finding needs any more (they would hide future failures)."""
    seen = {f.check_id for f in findings}
    return sorted(set(skipped) - seen)


def write_rendered(rendered: Mapping[str, list[dict[str, Any]]], folder: Path) -> Path:
    """Write each deployed kustomization's objects to `folder/<name>.yaml` for checkov."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in DEPLOYED:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(rendered[name], sort_keys=False))
    return folder


# --- terraform -------------------------------------------------------------------------------


def _unquote(value: Any) -> Any:
    """python-hcl2 (>= 5) keeps the quotes of string literals and block labels; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _normalise(node: Any) -> Any:
    if isinstance(node, dict):
        return {_unquote(k): _normalise(v) for k, v in node.items() if k != "__is_block__"}
    if isinstance(node, list):
        return [_normalise(item) for item in node]
    return _unquote(node)


def load_terraform(directory: Path) -> dict[str, Any]:
    """The top-level blocks of every *.tf file in `directory` (not recursive), merged:
    {"resource": {type: {name: body}}, "data": {...}, "variable": {name: body},
    "output": {...}, "module": {...}, "provider": {...}, "terraform": [body, ...]}."""
    import hcl2

    merged: dict[str, Any] = {"terraform": []}
    files = sorted(directory.glob("*.tf"))
    if not files:
        raise CheckError(f"no *.tf files in {directory}")
    for path in files:
        with path.open() as handle:
            parsed = _normalise(hcl2.load(handle))
        for block, entries in parsed.items():
            if block == "terraform":
                merged["terraform"] += entries
            elif block in ("resource", "data"):
                for entry in entries:
                    for kind, named in entry.items():
                        merged.setdefault(block, {}).setdefault(kind, {}).update(named)
            else:
                for entry in entries:
                    merged.setdefault(block, {}).update(entry)
    return merged


def least_privilege_problems(
    statements: Iterable[Mapping[str, Any]], allowed_resources: Iterable[str]
) -> list[str]:
    """Why an IAM policy document (its `statement` blocks) is not least privilege: an Allow
    with a wildcard action, NotAction/NotResource, or a resource that is not exactly one of
    `allowed_resources` (compared on the HCL text, e.g. "${aws_s3_bucket.x.arn}/models/*")."""
    allowed = list(allowed_resources)
    problems: list[str] = []
    for index, statement in enumerate(statements):
        label = statement.get("sid") or f"statement {index}"
        if statement.get("effect", "Allow") != "Allow":
            continue
        for forbidden in ("not_actions", "not_resources"):
            if statement.get(forbidden):
                problems.append(f"{label}: uses {forbidden}")
        actions = statement.get("actions") or []
        if not actions:
            problems.append(f"{label}: no actions")
        problems += [f"{label}: wildcard action {a!r}" for a in actions if "*" in a]
        resources = statement.get("resources") or []
        if not resources:
            problems.append(f"{label}: no resources")
        for resource in resources:
            if resource not in allowed:
                problems.append(f"{label}: resource {resource!r} is outside {allowed}")
    return problems


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-checkov", action="store_true", help="render and validate only")
    args = parser.parse_args(argv)
    failed = False
    rendered = render_all()
    for name, docs in rendered.items():
        problems = validate(docs)
        failed |= bool(problems)
        print(f"{name}: {len(docs)} objects, {len(problems)} schema problems")
        for problem in problems:
            print(f"  {problem}")
    if args.no_checkov:
        return int(failed)
    skips = load_skips()
    with tempfile.TemporaryDirectory() as tmp:
        targets = {
            "kubernetes": write_rendered(rendered, Path(tmp) / "k8s"),
            "terraform": TERRAFORM,
        }
        for framework, target in targets.items():
            findings = run_checkov(target, framework)
            bad, old = unexpected(findings, skips[framework]), stale(findings, skips[framework])
            failed |= bool(bad or old)
            print(
                f"checkov {framework}: {len(findings)} failed checks, "
                f"{len(findings) - len(bad)} on the skip list, {len(bad)} unexpected, "
                f"{len(old)} stale skips"
            )
            for finding in bad:
                print(f"  {finding}")
            for check_id in old:
                print(f"  stale skip: {check_id}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
