locals {
  name       = "${var.app}-${var.env}"
  blue_green = var.strategy == "blue_green"
  colors     = local.blue_green ? ["blue", "green"] : ["main"]
  idle_color = var.live_color == "blue" ? "green" : "blue"

  versions = local.blue_green ? {
    blue  = coalesce(var.blue_version, var.app_version)
    green = coalesce(var.green_version, var.app_version)
  } : { main = var.app_version }

  weights = local.blue_green ? { blue = var.blue_weight, green = var.green_weight } : { main = 100 }
}

resource "aws_ecs_cluster" "this" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "app" {
  name              = "/ecs/${local.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_iam_role" "execution" {
  name = "${local.name}-execution"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# Least privilege for the ECS agent: pull the image, write logs, read the app's own secrets.
resource "aws_iam_role_policy" "execution" {
  name = "${local.name}-execution"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
        Resource = "*"
      },
      {
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.app.arn}:*"
      }
      ], length(var.secrets) == 0 ? [] : [{
        Effect   = "Allow"
        Action   = ["ssm:GetParameters", "secretsmanager:GetSecretValue"]
        Resource = values(var.secrets)
    }])
  })
}

resource "aws_ecs_task_definition" "app" {
  for_each                 = toset(local.colors)
  family                   = local.blue_green ? "${local.name}-${each.key}" : local.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn

  container_definitions = jsonencode([{
    name      = "web"
    image     = "${var.image_repository}:${local.versions[each.key]}"
    essential = true
    portMappings = [{
      containerPort = var.container_port
      protocol      = "tcp"
    }]
    environment = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
    secrets     = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.app.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

data "aws_region" "current" {}

resource "aws_ecs_service" "app" {
  for_each                           = toset(local.colors)
  name                               = local.blue_green ? "${local.name}-${each.key}" : local.name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.app[each.key].arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.public[*].id
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = true
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.app[each.key].arn
    container_name   = "web"
    container_port   = var.container_port
  }

  tags = { Color = each.key, Version = local.versions[each.key] }

  depends_on = [aws_lb_listener.production]
}
