# An example of the team's own rules over every plan (written by `tfreview init`; docs/policy-as-code.md).
# `deny` blocks a plan (apply refuses it), `warn` is shown beside the risks. The input is the plan JSON as
# `terraform show -json` writes it; tfreview's own facts are in data.tfreview (env, version, planner, ...).
#   tfreview policy test policy/                         # runs example_test.rego
#   tfreview policy check PLAN.json --policy policy/     # judges a plan, writes nothing
# The policy file names these files (checks = ["policy/*.rego"]); `tfreview policy init/propose` stores them in
# the signed policy version, so a plan is judged by the store's copy, never by a file edited locally.
package main

import rego.v1

# Registries task definitions may pull images from. Put yours here, e.g.
# "123456789012.dkr.ecr.eu-west-1.amazonaws.com/" (the bundled Terraform's default images are "example/APP").
allowed_registries := ["example/"]

deny contains msg if {
	some rc in input.resource_changes
	rc.type == "aws_ecs_task_definition"
	some action in rc.change.actions
	action in {"create", "update"}
	is_string(rc.change.after.container_definitions)
	some container in json.unmarshal(rc.change.after.container_definitions)
	not allowed_image(container.image)
	msg := sprintf("%s: container %s pulls %s; policy/example.rego allows images from %s only", [
		rc.address, container.name, container.image, concat(", ", allowed_registries),
	])
}

allowed_image(image) if {
	some prefix in allowed_registries
	startswith(image, prefix)
}

warn contains msg if {
	some rc in input.resource_changes
	startswith(rc.type, "aws_iam_")
	some action in rc.change.actions
	action in {"create", "update", "delete"}
	msg := sprintf("%s: IAM %s; have someone who knows the account's IAM look at it", [rc.address, action])
}
