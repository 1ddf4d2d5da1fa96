# Remote state: S3 (encrypted) with a DynamoDB table for locking, so two applies never run on
# the same state at once. A backend block cannot read variables, so these values are
# PLACEHOLDERS: pass the real ones at init, e.g.
#   cp backend.hcl.example backend.hcl   # edit bucket, table, region
#   terraform init -backend-config=backend.hcl
# The state bucket and lock table are made once per account, outside this configuration
# (state cannot hold the bucket that holds it). The DynamoDB table needs a string partition key
# named LockID. (Terraform >= 1.10 can lock with the state bucket alone, `use_lockfile = true`;
# the table is kept here because it works with every 1.x release this configuration allows.)
terraform {
  backend "s3" {
    bucket         = "REPLACE-ME-terraform-state"
    key            = "mlops-pipeline/flight-delay-prod/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "REPLACE-ME-terraform-locks"
    encrypt        = true
  }
}
