# A real 1,000-resource plan for the benchmark: mixed AWS types of an ECS estate, planned (never applied)
# against moto by bench/make_real.py. Counts per type at scale = 100:
#   1 vpc + 1 subnet + 1 cluster + 200 task definitions + 100 services + 150 security groups + 100 IAM roles
#   + 100 role policies + 100 SSM parameters + 100 log groups + 100 target groups + 47 SQS queues = 1,000.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
}

variable "scale" {
  type    = number
  default = 100
}

variable "version_tag" {
  type    = string
  default = "1.4.2"
}

resource "aws_vpc" "main" {
  cidr_block = "10.30.0.0/16"
}

resource "aws_subnet" "main" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.30.1.0/24"
}

resource "aws_ecs_cluster" "main" {
  name = "bench"
}

resource "aws_ecs_task_definition" "svc" {
  count                    = 2 * var.scale
  family                   = "bench-svc-${count.index}"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = aws_iam_role.svc[count.index % var.scale].arn

  container_definitions = jsonencode([
    {
      name         = "web"
      image        = "example/svc-${count.index}:${var.version_tag}"
      essential    = true
      cpu          = 256
      memory       = 512
      portMappings = [{ containerPort = 8080, hostPort = 8080, protocol = "tcp" }]
      environment = [
        { name = "APP_ENV", value = "prod" },
        { name = "LOG_LEVEL", value = "info" },
        { name = "SERVICE_INDEX", value = tostring(count.index) },
      ]
      secrets = [{ name = "DB_PASSWORD", valueFrom = aws_ssm_parameter.svc[count.index % var.scale].arn }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.svc[count.index % var.scale].name
          awslogs-region        = "us-east-1"
          awslogs-stream-prefix = "web"
        }
      }
    }
  ])
}

resource "aws_ecs_service" "svc" {
  count           = var.scale
  name            = "bench-svc-${count.index}"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.svc[count.index].arn
  desired_count   = 2
  launch_type     = "FARGATE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets         = [aws_subnet.main.id]
    security_groups = [aws_security_group.svc[count.index].id]
  }
}

resource "aws_security_group" "svc" {
  count       = 3 * var.scale / 2
  name        = "bench-svc-${count.index}"
  description = "service ${count.index}"
  vpc_id      = aws_vpc.main.id

  ingress {
    from_port   = 8080
    to_port     = 8080
    protocol    = "tcp"
    cidr_blocks = ["10.30.0.0/16"]
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_iam_role" "svc" {
  count = var.scale
  name  = "bench-svc-${count.index}"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ecs-tasks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "svc" {
  count = var.scale
  name  = "read-parameter"
  role  = aws_iam_role.svc[count.index].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["ssm:GetParameters"], Resource = [aws_ssm_parameter.svc[count.index].arn] }]
  })
}

resource "aws_ssm_parameter" "svc" {
  count = var.scale
  name  = "/bench/svc-${count.index}/db_password"
  type  = "SecureString"
  value = "bench-not-a-secret-${count.index}"
}

resource "aws_cloudwatch_log_group" "svc" {
  count             = var.scale
  name              = "/ecs/bench-svc-${count.index}"
  retention_in_days = 30
}

resource "aws_lb_target_group" "svc" {
  count       = var.scale
  name        = "bench-svc-${count.index}"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id

  health_check {
    path = "/health"
  }
}

resource "aws_sqs_queue" "jobs" {
  count                      = var.scale / 2 - 3
  name                       = "bench-jobs-${count.index}"
  visibility_timeout_seconds = 60
}
