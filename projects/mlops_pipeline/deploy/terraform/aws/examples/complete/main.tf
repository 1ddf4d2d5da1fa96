# A root configuration that calls the module: production for the flight-delay service.
#   terraform init -backend-config=backend.hcl
#   terraform apply -var 'subnet_ids=["subnet-0123456789abcdef0","subnet-0fedcba9876543210"]'
# deploy/k8s/overlays/prod expects name = "flight-delay-prod" (its IRSA annotation names the
# role flight-delay-prod-serving) and the namespace/service account flight-delay/flight-delay.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project     = "mlops-pipeline"
      environment = "prod"
    }
  }
}

module "platform" {
  source = "../.."

  name                 = var.name
  subnet_ids           = var.subnet_ids
  k8s_namespace        = "flight-delay"
  service_account_name = "flight-delay"
  model_prefix         = "models"
}
