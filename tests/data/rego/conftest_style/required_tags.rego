# Every taggable resource that is created or updated carries the team's tags.
package main

import rego.v1

required_tags := {"owner", "cost-center"}

taggable(after) if {
	is_object(after)
	"tags_all" in object.keys(after)
}

deny contains {"msg": msg} if {
	some rc in input.resource_changes
	some action in rc.change.actions
	action in {"create", "update"}
	taggable(rc.change.after)
	tags := object.get(rc.change.after, "tags_all", {})
	present := object.keys(tags)
	some tag in required_tags - present
	msg := sprintf("%s: missing required tag %s", [rc.address, tag])
}
