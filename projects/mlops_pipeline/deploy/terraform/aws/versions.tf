# The providers this module needs, pinned to a major version (a new major can change resource
# schemas under a running stack). No provider configuration and no backend here: a module gets
# both from the root that calls it (examples/complete).
terraform {
  # 1.9: input validation may refer to other variables (node group min <= desired <= max).
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }
}
