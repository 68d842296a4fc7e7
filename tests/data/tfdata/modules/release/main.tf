# The one resource of the terraform_data-only package: its apply takes `apply_seconds` (a local-exec sleep), for
# tests that interrupt an apply.
variable "app" {
  type = string
}

variable "app_version" {
  type = string
}

variable "apply_seconds" {
  type = number
}

resource "terraform_data" "release" {
  input = { app = var.app, version = var.app_version }

  provisioner "local-exec" {
    command = "sleep ${var.apply_seconds}"
  }
}
