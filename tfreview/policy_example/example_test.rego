# Tests of example.rego, as `opa test` and `conftest verify` run them: tfreview policy test policy/
package main

import rego.v1

change(type, after) := {"address": sprintf("%s.example", [type]), "type": type,
	"change": {"actions": ["create"], "after": after}}

task_definition(image) := {"resource_changes": [change("aws_ecs_task_definition", {
	"family": "shop",
	"container_definitions": json.marshal([{"name": "app", "image": image}]),
})]}

test_an_image_from_an_allowed_registry_passes if {
	msgs := deny with input as task_definition("example/shop:1.0.0")
	count(msgs) == 0
}

test_an_image_from_another_registry_is_denied if {
	msgs := deny with input as task_definition("docker.io/someone/shop:1.0.0")
	msgs == {concat("", [
		"aws_ecs_task_definition.example: container app pulls docker.io/someone/shop:1.0.0; ",
		"policy/example.rego allows images from example/ only",
	])}
}

test_an_iam_change_warns_and_does_not_deny if {
	plan := {"resource_changes": [change("aws_iam_role", {"name": "shop-task"})]}
	warnings := warn with input as plan
	warnings == {"aws_iam_role.example: IAM create; have someone who knows the account's IAM look at it"}
	denials := deny with input as plan
	count(denials) == 0
}
