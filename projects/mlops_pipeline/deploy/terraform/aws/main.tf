# AWS platform for the flight-delay service: an EKS cluster with one managed node group, the
# ECR repository of the serving image, the S3 bucket of model artefacts (MLflow's artifact
# store), and the IAM role the serving pods assume through IRSA. Files by concern:
#   kms.tf  keys    s3.tf  artefact bucket    ecr.tf  image repository
#   eks.tf  cluster, node group, OIDC provider    irsa.tf  the serving pods' role
# Not applied anywhere here (no account): see deploy/README.md.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  tags = merge(var.tags, {
    "app.kubernetes.io/part-of" = "mlops-pipeline"
    "managed-by"                = "terraform"
  })
}
