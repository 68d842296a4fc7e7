variable "region" {
  type    = string
  default = "us-east-1"
}

variable "app" {
  type = string
}

variable "image_repository" {
  type    = string
  default = null
}

variable "strategy" {
  type    = string
  default = "blue_green"
}

variable "live_color" {
  type    = string
  default = "blue"
}

variable "blue_version" {
  type    = string
  default = null
}

variable "green_version" {
  type    = string
  default = null
}

variable "blue_weight" {
  type    = number
  default = 100
}

variable "green_weight" {
  type    = number
  default = 0
}

variable "app_version" {
  type    = string
  default = null
}

variable "environment" {
  type    = map(string)
  default = { LOG_LEVEL = "info" }
}
