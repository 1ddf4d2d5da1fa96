output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name <this>)."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint of the cluster."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_oidc_issuer_url" {
  description = "The cluster's OIDC issuer, trusted by IAM for IRSA."
  value       = aws_eks_cluster.this.identity[0].oidc[0].issuer
}

output "ecr_repository_url" {
  description = "Where to push the serving image; deploy/k8s/overlays/prod's image name."
  value       = aws_ecr_repository.serving.repository_url
}

output "artefact_bucket" {
  description = "Name of the model artefact bucket."
  value       = aws_s3_bucket.artefacts.bucket
}

output "model_artifact_root" {
  description = "MLflow artifact root for the registry the service loads from (s3://bucket/prefix)."
  value       = "s3://${aws_s3_bucket.artefacts.bucket}/${var.model_prefix}"
}

output "serving_role_arn" {
  description = "IAM role for the serving service account: the eks.amazonaws.com/role-arn annotation in deploy/k8s/overlays/prod."
  value       = aws_iam_role.serving.arn
}

output "artefacts_kms_key_arn" {
  description = "KMS key encrypting the artefact bucket and the image repository."
  value       = aws_kms_key.artefacts.arn
}
