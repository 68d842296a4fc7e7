# Containers never run privileged nor as root.
package main

import rego.v1

definitions contains [rc.address, c] if {
	some rc in input.resource_changes
	rc.type == "aws_ecs_task_definition"
	some action in rc.change.actions
	action in {"create", "update"}
	some c in json.unmarshal(rc.change.after.container_definitions)
}

deny contains msg if {
	some [address, c] in definitions
	c.privileged == true
	msg := sprintf("%s: container %s runs privileged", [address, c.name])
}

warn contains msg if {
	some [address, c] in definitions
	c.user in {"root", "0", "0:0"}
	msg := sprintf("%s: container %s runs as root", [address, c.name])
}
