# No security group opens a port other than 80/443 to the whole internet.
package main

import rego.v1

public_cidrs := {"0.0.0.0/0", "::/0"}

rules_of(after) := after.ingress if is_array(after.ingress)

deny contains msg if {
	some rc in input.resource_changes
	rc.type == "aws_security_group"
	some rule in rules_of(rc.change.after)
	some cidr in array.concat(object.get(rule, "cidr_blocks", []), object.get(rule, "ipv6_cidr_blocks", []))
	public_cidrs[cidr]
	not rule.from_port in {80, 443}
	msg := sprintf("%s: ports %d-%d open to %s", [rc.address, rule.from_port, rule.to_port, cidr])
}
