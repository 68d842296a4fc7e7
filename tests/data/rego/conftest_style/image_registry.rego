# Task definitions pull images only from the allowed registries.
package main

import rego.v1

allowed_registries := ["123456789012.dkr.ecr.us-east-1.amazonaws.com/", "public.ecr.aws/docker/library/"]

containers contains [rc.address, c] if {
	some rc in input.resource_changes
	rc.type == "aws_ecs_task_definition"
	"create" in rc.change.actions
	some c in json.unmarshal(rc.change.after.container_definitions)
}

deny contains msg if {
	some [address, c] in containers
	not startswith_any(c.image, allowed_registries)
	msg := sprintf("%s: container %s uses image %s from a registry that is not allowed", [address, c.name, c.image])
}

startswith_any(s, prefixes) if {
	some p in prefixes
	startswith(s, p)
}
