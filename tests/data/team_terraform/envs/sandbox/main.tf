terraform {
  required_version = ">= 1.5"
  backend "local" {}
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

variable "app" { type = string }
variable "image_repository" {
  type    = string
  default = null
}
variable "image_tag_stable" {
  type    = string
  default = null
}
variable "image_tag_canary" {
  type    = string
  default = null
}
variable "traffic_stable" {
  type    = number
  default = 100
}
variable "traffic_canary" {
  type    = number
  default = 0
}

locals {
  name    = "${var.app}-sandbox"
  tracks  = ["stable", "canary"]
  tags    = { stable = var.image_tag_stable, canary = var.image_tag_canary }
  traffic = { stable = var.traffic_stable, canary = var.traffic_canary }
  # No live-colour variable: the preview listener reaches the track with less production traffic.
  preview = var.traffic_stable >= var.traffic_canary ? "canary" : "stable"
}

data "aws_availability_zones" "zones" {
  state = "available"
}

resource "aws_vpc" "net" {
  cidr_block = "10.77.0.0/16"
}

resource "aws_subnet" "az" {
  count             = 2
  vpc_id            = aws_vpc.net.id
  cidr_block        = cidrsubnet("10.77.0.0/16", 8, count.index)
  availability_zone = data.aws_availability_zones.zones.names[count.index]
}

resource "aws_security_group" "lb" {
  name        = "${local.name}-lb"
  description = "load balancer"
  vpc_id      = aws_vpc.net.id
  ingress {
    from_port   = 80
    to_port     = 81
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "tasks, from the load balancer only"
  vpc_id      = aws_vpc.net.id
  ingress {
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    security_groups = [aws_security_group.lb.id]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_iam_role" "task_exec" {
  name = "${local.name}-task-exec"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ecs-tasks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "task_exec" {
  role       = aws_iam_role.task_exec.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_ecs_cluster" "main" {
  name = local.name
}

resource "aws_ecs_task_definition" "task" {
  for_each                 = toset(local.tracks)
  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.task_exec.arn
  container_definitions = jsonencode([{
    name         = "web"
    image        = "${coalesce(var.image_repository, "example/${var.app}")}:${local.tags[each.key]}"
    essential    = true
    portMappings = [{ containerPort = 8080, protocol = "tcp" }]
  }])
}

resource "aws_lb" "front" {
  name               = local.name
  load_balancer_type = "application"
  security_groups    = [aws_security_group.lb.id]
  subnets            = aws_subnet.az[*].id
}

resource "aws_lb_target_group" "tg" {
  for_each    = toset(local.tracks)
  name        = "${local.name}-${each.key}"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.net.id
  health_check {
    path    = "/health"
    matcher = "200"
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.front.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "forward"
    forward {
      dynamic "target_group" {
        for_each = local.tracks
        content {
          arn    = aws_lb_target_group.tg[target_group.value].arn
          weight = local.traffic[target_group.value]
        }
      }
    }
  }
}

resource "aws_lb_listener" "preview" {
  load_balancer_arn = aws_lb.front.arn
  port              = 81
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.tg[local.preview].arn
  }
}

resource "aws_ecs_service" "svc" {
  for_each        = toset(local.tracks)
  name            = "${local.name}-${each.key}"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.task[each.key].arn
  desired_count   = 1
  launch_type     = "FARGATE"
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets         = aws_subnet.az[*].id
    security_groups = [aws_security_group.tasks.id]
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.tg[each.key].arn
    container_name   = "web"
    container_port   = 8080
  }
  depends_on = [aws_lb_listener.https]
}

# The outputs tfreview reads (docs/bring-your-own-terraform.md), keyed by track.
output "versions" { value = local.tags }
output "weights" { value = local.traffic }
output "cluster_name" { value = aws_ecs_cluster.main.name }
output "services" { value = { for k, s in aws_ecs_service.svc : k => s.name } }
output "task_definitions" { value = { for k, t in aws_ecs_task_definition.task : k => t.arn } }
output "target_groups" { value = { for k, t in aws_lb_target_group.tg : k => t.arn } }
output "listener_arn" { value = aws_lb_listener.https.arn }
output "test_listener_arn" { value = aws_lb_listener.preview.arn }
output "test_listener_port" { value = 81 }
output "alb_dns_name" { value = aws_lb.front.dns_name }
