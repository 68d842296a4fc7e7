package main

import rego.v1

td(defs) := {"resource_changes": [{"address": "aws_ecs_task_definition.app", "type": "aws_ecs_task_definition",
	"change": {"actions": ["create"], "after": {"container_definitions": json.marshal(defs)}}}]}

test_privileged_container_is_denied if {
	msgs := deny with input as td([{"name": "app", "image": "x", "privileged": true}])
	"aws_ecs_task_definition.app: container app runs privileged" in msgs
}

test_plain_container_passes if {
	msgs := deny with input as td([{"name": "app", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1"}])
	count(msgs) == 0
}
