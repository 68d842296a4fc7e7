# Root module of the "prod" environment: backend + one module call. Release variables (versions per colour,
# live colour, weights) are written by tfreview into tfreview.auto.tfvars.json for each plan.
terraform {
  required_version = ">= 1.5"
  # Local state by default (tfreview points its path into the store); tfreview overrides this with the S3
  # backend in team mode (a generated backend_override.tf).
  backend "local" {}
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { App = var.app, Env = "prod", ManagedBy = "tfreview" }
  }
}

module "webapp" {
  source = "../../modules/ecs-webapp"

  app              = var.app
  env              = "prod"
  image_repository = coalesce(var.image_repository, "example/${var.app}")
  strategy         = var.strategy
  live_color       = var.live_color
  blue_version     = var.blue_version
  green_version    = var.green_version
  blue_weight      = var.blue_weight
  green_weight     = var.green_weight
  app_version      = var.app_version
  environment      = var.environment
  desired_count    = 2
  allowed_cidrs    = ["10.0.0.0/8"]
}
