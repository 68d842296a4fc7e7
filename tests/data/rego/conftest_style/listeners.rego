# Listeners on the production port stay HTTP-to-HTTPS redirects or forwards; a fixed response is a warning.
package main

import rego.v1

warn contains msg if {
	some rc in input.resource_changes
	rc.type == "aws_lb_listener"
	"update" in rc.change.actions
	some action in rc.change.after.default_action
	action.type == "forward"
	msg := sprintf("%s: traffic weights change", [rc.address])
}
