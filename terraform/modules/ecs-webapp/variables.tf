variable "app" {
  description = "Application name; prefixes every resource name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}$", var.app))
    error_message = "app must be lowercase letters, digits and dashes, at most 21 characters."
  }
}

variable "env" {
  description = "Environment name (sandbox, qa, prod...)."
  type        = string
}

variable "image_repository" {
  description = "Container image repository; the image is \"<image_repository>:<version>\"."
  type        = string
}

variable "strategy" {
  description = "\"blue_green\" (two services behind weighted target groups) or \"rolling\" (one service, circuit breaker with rollback)."
  type        = string
  default     = "blue_green"
  validation {
    condition     = contains(["blue_green", "rolling"], var.strategy)
    error_message = "strategy must be \"blue_green\" or \"rolling\"."
  }
}

variable "live_color" {
  description = "blue_green: the colour production traffic is meant to be on; the test listener reaches the other (idle) one."
  type        = string
  default     = "blue"
  validation {
    condition     = contains(["blue", "green"], var.live_color)
    error_message = "live_color must be \"blue\" or \"green\"."
  }
}

variable "blue_version" {
  description = "blue_green: application version (image tag) run by the blue service."
  type        = string
  default     = null
}

variable "green_version" {
  description = "blue_green: application version (image tag) run by the green service."
  type        = string
  default     = null
}

variable "blue_weight" {
  description = "blue_green: percent of production traffic sent to blue (0-100)."
  type        = number
  default     = 100
}

variable "green_weight" {
  description = "blue_green: percent of production traffic sent to green (0-100)."
  type        = number
  default     = 0
}

variable "app_version" {
  description = "rolling: application version (image tag) of the single service. blue_green: default for both colours."
  type        = string
  default     = null
}

variable "environment" {
  description = "Plain environment variables of the web container (name => value). Use `secrets` for secrets."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secret environment variables of the web container (name => SSM parameter or Secrets Manager ARN)."
  type        = map(string)
  default     = {}
}

variable "container_port" {
  description = "Port the web container listens on."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "HTTP path the load balancer checks on each task."
  type        = string
  default     = "/health"
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
  default     = 512
}

variable "desired_count" {
  description = "Tasks per service (per colour with blue_green)."
  type        = number
  default     = 1
}

variable "listener_port" {
  description = "Production listener port."
  type        = number
  default     = 80
}

variable "test_listener_port" {
  description = "blue_green: test listener port, reaching the idle colour only."
  type        = number
  default     = 8080
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach the load balancer."
  type        = list(string)
  default     = ["10.0.0.0/8"]
}

variable "vpc_cidr" {
  description = "CIDR of the VPC the module creates."
  type        = string
  default     = "10.42.0.0/16"
}

variable "log_retention_days" {
  description = "CloudWatch log retention in days."
  type        = number
  default     = 30
}
