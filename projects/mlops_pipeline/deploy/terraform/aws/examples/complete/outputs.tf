output "cluster_name" {
  description = "EKS cluster name."
  value       = module.platform.cluster_name
}

output "ecr_repository_url" {
  description = "Push the serving image here."
  value       = module.platform.ecr_repository_url
}

output "serving_role_arn" {
  description = "Annotate the serving service account with this role."
  value       = module.platform.serving_role_arn
}

output "model_artifact_root" {
  description = "MLflow artifact root the service reads from."
  value       = module.platform.model_artifact_root
}
