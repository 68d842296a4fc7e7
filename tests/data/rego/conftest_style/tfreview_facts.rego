# tfreview's own facts: in prod, a plan that changes IAM is blocked for a deploy.
package main

import rego.v1

deny contains msg if {
	data.tfreview.env == "prod"
	data.tfreview.plan_kind == "deploy"
	some rc in input.resource_changes
	startswith(rc.type, "aws_iam_")
	not rc.change.actions == ["no-op"]
	msg := sprintf("%s: IAM changes in prod go through the platform team, not a deploy", [rc.address])
}
