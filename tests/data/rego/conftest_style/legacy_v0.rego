# An older module in Rego v0 syntax (no `if`/`contains`), as many conftest policies still are.
package main

deny[msg] {
	rc := input.resource_changes[_]
	rc.type == "aws_ecs_service"
	rc.change.actions[_] == "delete"
	msg := sprintf("%s: an ECS service is deleted", [rc.address])
}

warn[msg] {
	rc := input.resource_changes[_]
	rc.type == "aws_ecs_task_definition"
	rc.change.actions == ["delete", "create"]
	msg := sprintf("%s: task definition replaced (new revision)", [rc.address])
}
