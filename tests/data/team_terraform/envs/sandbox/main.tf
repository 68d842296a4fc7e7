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
variable "container_image_stable" {
  description = "Full image URI of the stable track. CI normally writes the ECR image URI here."
  type        = string
  default     = null
}
variable "container_image_canary" {
  description = "Full image URI of the canary track. CI normally writes the ECR image URI here."
  type        = string
  default     = null
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
  images  = { stable = var.container_image_stable, canary = var.container_image_canary }
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
    image        = local.images[each.key]
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

# Autoscaling as public ECS modules declare it: a scalable target per track, target tracking on CPU and a step policy.
resource "aws_appautoscaling_target" "svc" {
  for_each           = toset(local.tracks)
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.svc[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = 1
  max_capacity       = 4
  tags               = { team = "shop", track = each.key }
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = toset(local.tracks)
  name               = "${local.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.svc[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.svc[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.svc[each.key].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "step" {
  for_each           = toset(local.tracks)
  name               = "${local.name}-${each.key}-step"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.svc[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.svc[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.svc[each.key].scalable_dimension
  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 60
    metric_aggregation_type = "Average"
    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

# The outputs tfreview reads (docs/bring-your-own-terraform.md), keyed by track. `versions` are the whole image
# URIs, as the module holds them: tfreview.toml's `image` says how to read the version out of them.
output "versions" { value = local.images }
output "weights" { value = local.traffic }
output "cluster_name" { value = aws_ecs_cluster.main.name }
output "services" { value = { for k, s in aws_ecs_service.svc : k => s.name } }
output "task_definitions" { value = { for k, t in aws_ecs_task_definition.task : k => t.arn } }
output "target_groups" { value = { for k, t in aws_lb_target_group.tg : k => t.arn } }
output "listener_arn" { value = aws_lb_listener.https.arn }
output "test_listener_arn" { value = aws_lb_listener.preview.arn }
output "test_listener_port" { value = 81 }
output "alb_dns_name" { value = aws_lb.front.dns_name }
