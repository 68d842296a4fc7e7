# Blast radius by weighted counts (OPA's Terraform tutorial): too big a plan needs splitting.
package main

import rego.v1

blast_radius := 20

weights := {
	"aws_ecs_service": {"delete": 10, "create": 2, "modify": 1},
	"aws_ecs_task_definition": {"delete": 1, "create": 1, "modify": 1},
	"aws_lb": {"delete": 10, "create": 5, "modify": 2},
	"aws_security_group": {"delete": 5, "create": 2, "modify": 2},
}

resource_types := object.keys(weights)

num_changes(type, action) := count([rc |
	some rc in input.resource_changes
	rc.type == type
	action in rc.change.actions
])

score := s if {
	all := [x |
		some type in resource_types
		x := ((weights[type].delete * num_changes(type, "delete")) +
			(weights[type].create * num_changes(type, "create"))) +
			(weights[type].modify * num_changes(type, "update"))
	]
	s := sum(all)
}

deny contains msg if {
	score > blast_radius
	msg := sprintf("blast radius %d exceeds the limit of %d: split the change", [score, blast_radius])
}

warn contains msg if {
	score > blast_radius / 2
	score <= blast_radius
	msg := sprintf("blast radius %d is over half the limit of %d", [score, blast_radius])
}
