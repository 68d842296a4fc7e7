# A terraform_data-only environment: the whole package -> plan -> approve -> apply loop with the real terraform
# binary and no AWS (terraform_data is built into terraform: no provider to install). Tests copy this tree.
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

resource "terraform_data" "release" {
  input = { app = var.app, version = var.app_version }
}

output "strategy" {
  value = var.strategy
}
