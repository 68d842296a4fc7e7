# A terraform_data-only environment (no AWS: terraform_data is built into terraform). Tests copy this tree.
terraform {
  required_version = ">= 1.5"
  backend "local" {}
}

variable "app" {
  type = string
}

variable "strategy" {
  type    = string
  default = "rolling"
}

variable "app_version" {
  type    = string
  default = "0"
}

module "release" {
  source        = "../../modules/release"
  app           = var.app
  app_version   = var.app_version
  apply_seconds = 0
}

output "strategy" {
  value = var.strategy
}
