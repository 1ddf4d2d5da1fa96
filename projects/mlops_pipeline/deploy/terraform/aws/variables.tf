variable "name" {
  description = "Prefix for every resource name (cluster, repository, bucket, roles), e.g. \"flight-delay-prod\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}[a-z0-9]$", var.name))
    error_message = "name must be 4-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "EKS control plane version (\"1.30\" matches the schemas deploy/check.py validates against)."
  type        = string
  default     = "1.30"

  validation {
    condition     = can(regex("^1\\.(2[89]|3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be an EKS minor version from 1.28 to 1.39, e.g. \"1.30\"."
  }
}

variable "subnet_ids" {
  description = "Private subnets (at least two, in different availability zones) for the control plane's network interfaces and the nodes. The module does not create the VPC."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "subnet_ids needs at least two subnet ids (subnet-xxxxxxxx)."
  }
}

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API is reachable from the internet (only from public_access_cidrs). Off by default: reach it from inside the VPC (VPN, bastion, CI runner)."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDR blocks allowed to reach a public API endpoint, when endpoint_public_access is true."
  type        = list(string)
  default     = ["203.0.113.0/24"]

  validation {
    condition     = alltrue([for cidr in var.public_access_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be valid CIDR blocks and must not include 0.0.0.0/0."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group (one pod at 0.5-2 vCPU, 1-2 GiB; ten pods at most)."
  type        = list(string)
  default     = ["m6i.large"]

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "node_instance_types needs at least one instance type."
  }
}

variable "node_min_size" {
  description = "Fewest nodes of the managed node group."
  type        = number
  default     = 2

  validation {
    condition     = var.node_min_size >= 1 && floor(var.node_min_size) == var.node_min_size
    error_message = "node_min_size must be a whole number >= 1."
  }
}

variable "node_desired_size" {
  description = "Nodes at creation (the cluster autoscaler, if installed, moves it later)."
  type        = number
  default     = 2

  validation {
    condition     = var.node_desired_size >= var.node_min_size && var.node_desired_size <= var.node_max_size
    error_message = "node_desired_size must lie between node_min_size and node_max_size."
  }
}

variable "node_max_size" {
  description = "Most nodes of the managed node group."
  type        = number
  default     = 5

  validation {
    condition     = var.node_max_size >= var.node_min_size && var.node_max_size <= 100
    error_message = "node_max_size must be >= node_min_size and <= 100."
  }
}

variable "k8s_namespace" {
  description = "Namespace of the serving pods (deploy/k8s/overlays/prod sets \"flight-delay\"): the IRSA role trusts only this namespace's service account."
  type        = string
  default     = "flight-delay"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.k8s_namespace))
    error_message = "k8s_namespace must be a DNS-1123 label."
  }
}

variable "service_account_name" {
  description = "Service account of the serving pods (deploy/k8s/base/serviceaccount.yaml: \"flight-delay\")."
  type        = string
  default     = "flight-delay"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.service_account_name))
    error_message = "service_account_name must be a DNS-1123 label."
  }
}

variable "ecr_repository_name" {
  description = "ECR repository of the serving image (deploy/k8s/overlays/prod pulls <account>.dkr.ecr.<region>.amazonaws.com/<this>)."
  type        = string
  default     = "mlops-pipeline-serving"

  validation {
    condition     = can(regex("^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", var.ecr_repository_name))
    error_message = "ecr_repository_name must be a valid ECR repository name (lowercase)."
  }
}

variable "model_prefix" {
  description = "Key prefix of the model artefacts in the bucket (MLflow's artifact root is s3://<bucket>/<model_prefix>); the serving role may read only below it."
  type        = string
  default     = "models"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$", var.model_prefix))
    error_message = "model_prefix must be a relative key prefix without leading or trailing slashes, e.g. \"models\"."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced (noncurrent) artefact version is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
