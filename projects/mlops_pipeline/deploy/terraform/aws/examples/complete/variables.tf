variable "region" {
  description = "AWS region of every resource (the ECR image name in deploy/k8s/overlays/prod uses it)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Resource name prefix passed to the module."
  type        = string
  default     = "flight-delay-prod"
}

variable "subnet_ids" {
  description = "Private subnets of an existing VPC (two or more availability zones)."
  type        = list(string)
}
