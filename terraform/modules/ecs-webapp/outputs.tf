output "strategy" {
  description = "\"blue_green\" or \"rolling\"."
  value       = var.strategy
}

output "live_color" {
  description = "blue_green: the colour meant to take production traffic (\"main\" with rolling)."
  value       = local.blue_green ? var.live_color : "main"
}

output "versions" {
  description = "Application version per colour."
  value       = local.versions
}

output "weights" {
  description = "Percent of production traffic per colour."
  value       = local.weights
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "services" {
  description = "ECS service name per colour."
  value       = { for k, s in aws_ecs_service.app : k => s.name }
}

output "target_groups" {
  description = "Target group ARN per colour."
  value       = { for k, tg in aws_lb_target_group.app : k => tg.arn }
}

output "task_definitions" {
  description = "Task definition ARN (with revision) per colour."
  value       = { for k, td in aws_ecs_task_definition.app : k => td.arn }
}

output "listener_arn" {
  description = "Production listener ARN."
  value       = aws_lb_listener.production.arn
}

output "test_listener_arn" {
  description = "blue_green: test listener ARN (idle colour); null with rolling."
  value       = local.blue_green ? aws_lb_listener.test[0].arn : null
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "test_listener_port" {
  description = "blue_green: port of the test listener (idle colour); null with rolling."
  value       = local.blue_green ? var.test_listener_port : null
}
