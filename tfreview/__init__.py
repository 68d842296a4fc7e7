"""tfreview: review, approve and release Terraform plans for ECS web apps (blue/green)."""
__version__ = "0.1.0"
