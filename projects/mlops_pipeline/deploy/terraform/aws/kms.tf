# Customer-managed keys, rotated yearly: one for the artefacts (bucket and image repository),
# one for envelope encryption of Kubernetes Secrets. Separate keys keep the serving role's
# decrypt grant (irsa.tf) from ever covering cluster secrets.
#
# Key policy: AWS's default one written out, which delegates the key's use to IAM policies in
# this account (the account root is the only principal). Who may use a key is then decided in
# IAM, next to every other permission, and irsa.tf grants the serving role Decrypt through S3
# only.
locals {
  key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EnableIAMPolicies"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_key" "artefacts" {
  description             = "${var.name}: model artefacts (S3) and serving images (ECR)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.key_policy
  tags                    = local.tags
}

resource "aws_kms_alias" "artefacts" {
  name          = "alias/${var.name}-artefacts"
  target_key_id = aws_kms_key.artefacts.key_id
}

resource "aws_kms_key" "eks" {
  description             = "${var.name}: envelope encryption of Kubernetes Secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.key_policy
  tags                    = local.tags
}

resource "aws_kms_alias" "eks" {
  name          = "alias/${var.name}-eks-secrets"
  target_key_id = aws_kms_key.eks.key_id
}
