# The serving pods' IAM role (IRSA). Trusted by exactly one Kubernetes service account, in one
# namespace, for the STS audience; allowed to list and read the model prefix of the artefact
# bucket and to decrypt it through S3, and nothing else: no wildcard action, no resource
# outside that prefix and its key. Image pulls are not the pods' business (eks.tf).

locals {
  oidc_issuer = replace(aws_iam_openid_connect_provider.eks.url, "https://", "")
}

data "aws_iam_policy_document" "serving_assume" {
  statement {
    sid     = "ServingServiceAccountOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.k8s_namespace}:${var.service_account_name}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "serving" {
  name                 = "${var.name}-serving"
  description          = "flight-delay serving pods (IRSA): read the model artefacts"
  assume_role_policy   = data.aws_iam_policy_document.serving_assume.json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "serving" {
  statement {
    sid       = "ListModelPrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artefacts.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.model_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadModels"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.artefacts.arn}/${var.model_prefix}/*"]
  }

  statement {
    sid       = "DecryptModelsThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.artefacts.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "serving" {
  name   = "read-model-artefacts"
  role   = aws_iam_role.serving.id
  policy = data.aws_iam_policy_document.serving.json
}
