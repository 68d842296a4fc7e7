# bench/make_plans.py --tfdata: 1,000 terraform_data resources (no provider: terraform's built-in one), planned
# as creates. `tfreview render plan.json` is timed beside `terraform show plan.tfplan` (docs/benchmarks.md).
variable "n" {
  type    = number
  default = 1000
}

resource "terraform_data" "item" {
  count = var.n
  input = {
    name    = "item-${count.index}"
    version = "1.0.${count.index % 7}"
    tags    = { team = "web", index = tostring(count.index) }
  }
  triggers_replace = ["rev-${count.index % 3}"]
}
