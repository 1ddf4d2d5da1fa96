"""The AWS Terraform (deploy/terraform/aws), checked offline: no account, no `terraform` binary.

python-hcl2 parses the module and its example root so the tests can assert on what they
declare: pinned providers, documented and validated variables, the remote-state backend, the
bucket's protections, the image repository, and above all what the serving pods' role may do
(least privilege: no wildcard action, nothing outside the model prefix). checkov scans it all
once; the manifests' IRSA annotation and namespace are held to the module's role and trust.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest
import yaml
from deploy_support import BROKEN_TERRAFORM, DEPLOY, check

BUCKET = "${aws_s3_bucket.artefacts.arn}"


@pytest.fixture(scope="module")
def module() -> dict[str, Any]:
    return check.load_terraform(check.TERRAFORM)


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return check.load_terraform(check.TERRAFORM_EXAMPLE)


def resource(tf: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return tf["resource"][kind][name]


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a body (hcl2 gives blocks as one-element lists)."""
    [inner] = body[name]
    return inner


def test_providers_and_terraform_are_pinned_with_an_upper_bound(module, example):
    for tf in (module, example):
        [settings] = [t for t in tf["terraform"] if "required_providers" in t]
        assert re.fullmatch(r">= 1\.\d+\.\d+, < 2\.0\.0", settings["required_version"])
        [providers] = settings["required_providers"]
        assert set(providers) == {"aws", "tls"}
        for spec in providers.values():
            assert spec["source"].startswith("hashicorp/")
            assert spec["version"].startswith("~>")  # a major-version ceiling


def test_the_module_leaves_backend_and_provider_configuration_to_its_caller(module):
    assert all("backend" not in t for t in module["terraform"])
    assert "provider" not in module


def test_the_example_keeps_state_in_s3_with_dynamodb_locking(example):
    [backend] = [t["backend"] for t in example["terraform"] if "backend" in t]
    [config] = backend
    s3 = config["s3"]
    assert set(s3) == {"bucket", "key", "region", "dynamodb_table", "encrypt"}
    assert s3["encrypt"] is True
    assert "REPLACE-ME" in s3["bucket"] and "REPLACE-ME" in s3["dynamodb_table"]
    text = (check.TERRAFORM_EXAMPLE / "backend.tf").read_text()
    assert "-backend-config" in text and "PLACEHOLDERS" in text
    sample = (check.TERRAFORM_EXAMPLE / "backend.hcl.example").read_text()
    settings = [line for line in sample.splitlines() if "=" in line and not line.startswith("#")]
    assert {line.split("=")[0].strip() for line in settings} == set(s3)
    source = example["module"]["platform"]["source"]
    assert (check.TERRAFORM_EXAMPLE / source).resolve() == check.TERRAFORM.resolve()


def test_every_variable_and_output_is_documented_and_typed(module, example):
    for tf in (module, example):
        for name, variable in tf["variable"].items():
            assert len(variable.get("description", "")) > 20, name
            assert "type" in variable, name
        for name, output in tf.get("output", {}).items():
            assert output.get("description"), name
    validated = {name for name, v in module["variable"].items() if v.get("validation")}
    assert set(module["variable"]) - validated == {"endpoint_public_access", "tags"}


def test_artefact_bucket_is_versioned_encrypted_private_and_tls_only(module):
    assert block(
        resource(module, "aws_s3_bucket_versioning", "artefacts"), "versioning_configuration"
    ) == {"status": "Enabled"}
    encryption = block(
        resource(module, "aws_s3_bucket_server_side_encryption_configuration", "artefacts"), "rule"
    )
    default = block(encryption, "apply_server_side_encryption_by_default")
    assert default == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": "${aws_kms_key.artefacts.arn}",
    }
    public = resource(module, "aws_s3_bucket_public_access_block", "artefacts")
    flags = (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    )
    assert all(public[flag] is True for flag in flags)
    policy = resource(module, "aws_s3_bucket_policy", "artefacts")
    assert policy["policy"] == "${data.aws_iam_policy_document.artefacts_tls_only.json}"
    statements = module["data"]["aws_iam_policy_document"]["artefacts_tls_only"]["statement"]
    insecure = next(s for s in statements if s["sid"] == "DenyInsecureTransport")
    assert insecure["effect"] == "Deny"
    assert insecure["resources"] == [BUCKET, f"{BUCKET}/*"]
    assert block(insecure, "condition") == {
        "test": "Bool",
        "variable": "aws:SecureTransport",
        "values": ["false"],
    }
    assert all(
        resource(module, "aws_kms_key", k)["enable_key_rotation"] is True
        for k in ("artefacts", "eks")
    )


def test_image_repository_is_immutable_and_scanned_on_push(module):
    repository = resource(module, "aws_ecr_repository", "serving")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert block(repository, "image_scanning_configuration") == {"scan_on_push": True}
    assert block(repository, "encryption_configuration")["encryption_type"] == "KMS"


def test_cluster_is_private_by_default_logs_everything_and_encrypts_secrets(module):
    cluster = resource(module, "aws_eks_cluster", "this")
    network = block(cluster, "vpc_config")
    assert network["endpoint_private_access"] is True
    assert module["variable"]["endpoint_public_access"]["default"] is False
    assert "0.0.0.0/0" not in module["variable"]["public_access_cidrs"]["default"]
    components = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    assert set(cluster["enabled_cluster_log_types"]) == components
    assert block(cluster, "encryption_config")["resources"] == ["secrets"]
    assert "aws_eks_node_group" in module["resource"]


def serving_policy(module: dict[str, Any]) -> list[dict[str, Any]]:
    role_policy = resource(module, "aws_iam_role_policy", "serving")
    assert role_policy["policy"] == "${data.aws_iam_policy_document.serving.json}"
    assert role_policy["role"] == "${aws_iam_role.serving.id}"
    return module["data"]["aws_iam_policy_document"]["serving"]["statement"]


def test_serving_role_reads_only_the_model_prefix(module):
    """Least privilege: no wildcard action, resources only the bucket (listing, restricted
    to the prefix), the objects under the prefix, and the artefacts key (through S3 only)."""
    statements = serving_policy(module)
    allowed = [BUCKET, f"{BUCKET}/${{var.model_prefix}}/*", "${aws_kms_key.artefacts.arn}"]
    assert check.least_privilege_problems(statements, allowed) == []
    actions = sorted(a for s in statements for a in s["actions"])
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"]
    by_sid = {s["sid"]: s for s in statements}
    assert by_sid["ListModelPrefix"]["resources"] == [BUCKET]
    assert block(by_sid["ListModelPrefix"], "condition") == {
        "test": "StringLike",
        "variable": "s3:prefix",
        "values": ["${var.model_prefix}/*"],
    }
    assert block(by_sid["DecryptModelsThroughS3"], "condition")["variable"] == "kms:ViaService"
    attached = module["resource"].get("aws_iam_role_policy_attachment", {})
    assert all("serving" not in body["role"] for body in attached.values())  # nothing else


def test_image_pulls_are_the_nodes_with_pull_only_rights(module):
    """The kubelet pulls images with the node role; the serving pods' role has no ECR access."""
    nodes = resource(module, "aws_iam_role_policy_attachment", "node")
    assert nodes["role"] == "${aws_iam_role.node.name}"
    managed = re.findall(r'"(\w+)"', nodes["for_each"])
    assert managed == [
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryPullOnly",
    ]
    assert nodes["policy_arn"] == "arn:${local.partition}:iam::aws:policy/${each.value}"
    assert not [a for s in serving_policy(module) for a in s["actions"] if a.startswith("ecr:")]


def test_the_least_privilege_check_rejects_wildcards_and_foreign_resources(tmp_path):
    (tmp_path / "policy.tf").write_text(
        """
data "aws_iam_policy_document" "loose" {
  statement {
    sid       = "Everything"
    actions   = ["s3:*"]
    resources = ["*"]
  }
  statement {
    sid       = "OtherBucket"
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::someone-else/*"]
  }
}
"""
    )
    loose = check.load_terraform(tmp_path)["data"]["aws_iam_policy_document"]["loose"]["statement"]
    assert check.least_privilege_problems(loose, [BUCKET]) == [
        "Everything: wildcard action 's3:*'",
        f"Everything: resource '*' is outside {[BUCKET]}",
        f"OtherBucket: resource 'arn:aws:s3:::someone-else/*' is outside {[BUCKET]}",
    ]


def test_serving_role_is_trusted_by_one_service_account_only(module):
    trust = module["data"]["aws_iam_policy_document"]["serving_assume"]["statement"]
    [statement] = trust
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert block(statement, "principals") == {
        "type": "Federated",
        "identifiers": ["${aws_iam_openid_connect_provider.eks.arn}"],
    }
    conditions = {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}
    assert conditions == {
        "${local.oidc_issuer}:sub": (
            "StringEquals",
            ["system:serviceaccount:${var.k8s_namespace}:${var.service_account_name}"],
        ),
        "${local.oidc_issuer}:aud": ("StringEquals", ["sts.amazonaws.com"]),
    }
    role = resource(module, "aws_iam_role", "serving")
    assert role["name"] == "${var.name}-serving"
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.serving_assume.json}"


def test_prod_manifests_name_the_role_namespace_and_repository_the_module_creates(module, example):
    """The IRSA annotation, namespace, service account and image of overlays/prod are what
    the example root makes the module create."""
    rendered = check.render(check.KUSTOMIZATIONS["prod"])
    account = next(d for d in rendered if d["kind"] == "ServiceAccount")
    call = example["module"]["platform"]
    name = example["variable"]["name"]["default"]
    role_name = resource(module, "aws_iam_role", "serving")["name"].replace("${var.name}", name)
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        f":role/{role_name}"
    )
    assert account["metadata"]["namespace"] == call["k8s_namespace"]
    assert account["metadata"]["name"] == call["service_account_name"]
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    region = example["variable"]["region"]["default"]
    repository = module["variable"]["ecr_repository_name"]["default"]
    assert re.fullmatch(
        rf"\d{{12}}\.dkr\.ecr\.{region}\.amazonaws\.com/{repository}:[\w.-]+", image
    )
    values = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text())
    literals = dict(item.split("=", 1) for item in values["configMapGenerator"][0]["literals"])
    assert literals["MLOPS_MODEL_NAME"] == "flight-delay"


# --- checkov --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_tf(tmp_path_factory) -> list[Any]:
    """One checkov run over a copy of the module (with its example) and a broken config."""
    root = tmp_path_factory.mktemp("terraform")
    shutil.copytree(check.TERRAFORM, root / "aws")
    (root / "broken").mkdir()
    (root / "broken" / "main.tf").write_text(BROKEN_TERRAFORM)
    return check.run_checkov(root, "terraform")


@pytest.mark.slow
def test_checkov_finds_nothing_but_the_documented_skips(checkov_tf):
    skips = check.load_skips()["terraform"]
    ours = [f for f in checkov_tf if not f.file.startswith("/broken/")]
    assert [str(f) for f in check.unexpected(ours, skips)] == []
    assert check.stale(ours, skips) == []


@pytest.mark.slow
def test_checkov_fails_the_broken_configuration(checkov_tf):
    broken = {f.check_id for f in checkov_tf if f.file.startswith("/broken/")}
    # mutable tags, no scan on push, and an admin ("*" on "*") policy: all passed by ours
    required = {"CKV_AWS_51", "CKV_AWS_163"}
    assert required <= broken
    assert any(check_id in broken for check_id in ("CKV_AWS_62", "CKV_AWS_63", "CKV_AWS_289"))
    assert not required & set(check.load_skips()["terraform"])
