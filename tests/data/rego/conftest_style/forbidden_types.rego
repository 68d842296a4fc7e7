# Forbidden resource types (in the style of conftest's examples/terraform).
package main

import rego.v1

forbidden_types := {"aws_iam_user", "aws_iam_access_key", "aws_internet_gateway"}

deny contains msg if {
	some rc in input.resource_changes
	forbidden_types[rc.type]
	some action in rc.change.actions
	action in {"create", "delete"}
	msg := sprintf("%s: %s of a forbidden resource type %s", [rc.address, action, rc.type])
}
