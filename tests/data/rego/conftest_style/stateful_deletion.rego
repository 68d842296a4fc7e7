# Stateful resources are never deleted (nor replaced) by a plan.
package main

import rego.v1

stateful := {"aws_db_instance", "aws_rds_cluster", "aws_s3_bucket", "aws_dynamodb_table", "aws_efs_file_system",
	"aws_cloudwatch_log_group"}

violation contains {"msg": msg, "resource": rc.address} if {
	some rc in input.resource_changes
	stateful[rc.type]
	"delete" in rc.change.actions
	msg := sprintf("%s: deleting a stateful %s loses its data", [rc.address, rc.type])
}
