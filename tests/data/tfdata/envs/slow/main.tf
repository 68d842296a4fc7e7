# Like envs/qa, but its apply takes a while (a local-exec sleep): for tests that interrupt an apply.
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

  provisioner "local-exec" {
    command = "sleep 20"
  }
}

output "strategy" {
  value = var.strategy
}
