# A plain rolling ECS service as a team writes it without tfreview roles (public-module style names:
# `aws_ecs_service.this`, `aws_ecs_task_definition.this`): tests/test_review_headline.py applies `image_tag` 1.0.0
# against the local AWS, then plans 1.1.0 (and, with `extra_infra`, a log group, a target group and a security
# group beside it) and reviews the plan without a tfreview.toml.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}

provider "aws" {
  region = "us-east-1"
}

variable "image_tag" { type = string }
variable "extra_infra" {
  type    = bool
  default = false
}

resource "aws_ecs_cluster" "this" {
  name = "plain"
}

resource "aws_vpc" "this" {
  cidr_block = "10.91.0.0/16"
}

resource "aws_subnet" "this" {
  vpc_id     = aws_vpc.this.id
  cidr_block = "10.91.1.0/24"
}

resource "aws_ecs_task_definition" "this" {
  family                   = "plain-web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  container_definitions = jsonencode([{
    name         = "web"
    image        = "example/web:${var.image_tag}"
    essential    = true
    cpu          = 128
    memory       = 256
    portMappings = [{ containerPort = 8080, hostPort = 8080, protocol = "tcp" }]
    environment  = [{ name = "APP_ENV", value = "sandbox" }]
  }])
}

resource "aws_ecs_service" "this" {
  name            = "web"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets = [aws_subnet.this.id]
  }
}

resource "aws_cloudwatch_log_group" "extra" {
  count = var.extra_infra ? 1 : 0
  name  = "/ecs/plain-web"
}

resource "aws_security_group" "extra" {
  count  = var.extra_infra ? 1 : 0
  name   = "plain-extra"
  vpc_id = aws_vpc.this.id
}

resource "aws_lb_target_group" "extra" {
  count    = var.extra_infra ? 1 : 0
  name     = "plain-extra"
  port     = 8080
  protocol = "HTTP"
  vpc_id   = aws_vpc.this.id
}
