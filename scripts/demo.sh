#!/usr/bin/env bash
# A whole release against the local AWS: package, plan, review, approve, apply, rollout; then a refused apply.
# Run by `make demo` (which puts the venv's tfreview on PATH). Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR="${DEMO_DIR:-$PWD/.demo}"
PORT="${DEMO_PORT:-5055}"
APP="${DEMO_APP:-webapp}"
ENV_NAME=sandbox
rm -rf "$DEMO_DIR" && mkdir -p "$DEMO_DIR"
export TFREVIEW_STORE="$DEMO_DIR/store"
export TFREVIEW_SANDBOX_STEP_S="${TFREVIEW_SANDBOX_STEP_S:-1}"
export TFREVIEW_ROLLOUT_POLL="${TFREVIEW_ROLLOUT_POLL:-0.5}"
export NO_COLOR="${NO_COLOR:-}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the local AWS (tfreview sandbox) on 127.0.0.1:$PORT"
tfreview sandbox --port "$PORT" > "$DEMO_DIR/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null; wait $SANDBOX_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q '^export AWS_ENDPOINT_URL' "$DEMO_DIR/sandbox.log" 2>/dev/null && break; sleep 0.2; done
eval "$(grep '^export ' "$DEMO_DIR/sandbox.log")"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

step "a webhook receiver on 127.0.0.1 (stands in for Slack/Mattermost and a JSON webhook): tfreview notifies it"
python3 tests/notify_receiver.py "$DEMO_DIR/notifications.jsonl" "$DEMO_DIR/receiver.port" > /dev/null 2>&1 &
RECEIVER_PID=$!
trap 'kill $SANDBOX_PID $RECEIVER_PID 2>/dev/null; wait $SANDBOX_PID $RECEIVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -s "$DEMO_DIR/receiver.port" ] && break; sleep 0.2; done
RECEIVER="127.0.0.1:$(cat "$DEMO_DIR/receiver.port")"
# The targets are configured per environment; their URLs (secrets) come from the variable urls_env names.
cat > "$DEMO_DIR/tfreview.toml" <<TOML
[notify.$ENV_NAME]
urls_env = "DEMO_NOTIFY_URLS"
timeout_s = 3
TOML
export TFREVIEW_CONFIG="$DEMO_DIR/tfreview.toml"
export DEMO_NOTIFY_URLS="mmost://$RECEIVER/demo-token json://$RECEIVER/webhook"
echo "notifications for $ENV_NAME go to mmost://$RECEIVER/... and json://$RECEIVER/..."

plan_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
# Each person signs with their own key: `as WHO command...` (the principal comes from the key, never a name).
as() { local who=$1; shift; TFREVIEW_SIGNING_KEY="$DEMO_DIR/keys/$who" "$@"; }
refused() {  # run a command that must be refused by policy (exit 3)
  set +e; "$@"; local rc=$?; set -e
  echo "exit code: $rc"; [ "$rc" = 3 ] || { echo "expected exit 3"; exit 1; }
}
unset TFREVIEW_USER

step "throw-away SSH keys for ci, a reviewer and a security reviewer; the signed policy (with its Rego rules) in the store"
mkdir -p "$DEMO_DIR/keys"
for who in ci reviewer security; do
  ssh-keygen -q -t ed25519 -N "" -C "$who@example.com (tfreview demo)" -f "$DEMO_DIR/keys/$who"
done
cat > "$DEMO_DIR/policy.toml" <<POLICY
admins = ["security@example.com"]
admin_quorum = 1

[signers]
"ci@example.com" = "$(cat "$DEMO_DIR/keys/ci.pub")"
"reviewer@example.com" = "$(cat "$DEMO_DIR/keys/reviewer.pub")"
"security@example.com" = "$(cat "$DEMO_DIR/keys/security.pub")"

[policy.default]
required_approvals = 1
escalate_on_risk = 1
checks = ["policy/*.rego"]
POLICY
# The team's own rules, in Rego: the example policy `tfreview init` writes (a deny rule: images only from the
# registries it lists; a warn rule: IAM changes) with its test. `policy init` stores them in the signed version.
mkdir -p "$DEMO_DIR/policy"
cp tfreview/policy_example/example.rego tfreview/policy_example/example_test.rego "$DEMO_DIR/policy/"
tfreview policy test "$DEMO_DIR/policy"
as security tfreview policy init "$DEMO_DIR/policy.toml"

step "1.0.0: package (build stage) -> plan -> approve -> apply (first release: creates the stack, ~90 s)"
as ci tfreview package --app "$APP" --version 1.0.0
P1=$(as ci tfreview plan --app "$APP" --version 1.0.0 --env "$ENV_NAME" --format json | plan_id)
tfreview show "$P1" | head -n 40   # the policy's warnings (IAM), summary, risks, ECS panels
as reviewer tfreview approve "$P1" --yes --comment "first release"
# Creating IAM roles and security groups is risky: the default policy asks for one more approver.
as security tfreview approve "$P1" --yes --comment "IAM and security groups reviewed"
as ci tfreview apply "$P1"

step "1.1.0 from a registry the policy does not allow: the deny rule blocks the plan (--fail-on policy: exit 4)"
as ci tfreview package --app "$APP" --version 1.1.0
set +e
as ci tfreview plan --app "$APP" --version 1.1.0 --env "$ENV_NAME" --var image_repository=docker.io/mallory/webapp \
  --fail-on policy > "$DEMO_DIR/plan-blocked.txt"
rc=$?
set -e
sed -n '/^Blocked by policy/,/^policy checks:/p' "$DEMO_DIR/plan-blocked.txt"   # the review opens with the rule's messages
echo "exit code: $rc"; [ "$rc" = 4 ] || { echo "expected exit 4: blocked by policy"; exit 1; }
# (Its apply is refused, exit 3: tests/test_policy_example.py. Here it would be refused first for touching the
# live colour too, since the image repository of both colours changed.)

step "1.1.0: plan (the review shows the image change on the idle colour)"
as ci tfreview plan --app "$APP" --version 1.1.0 --env "$ENV_NAME" | tee "$DEMO_DIR/plan-1.1.0.txt"
P2=$(grep '^plan id:' "$DEMO_DIR/plan-1.1.0.txt" | awk '{print $3}')

step "apply before approval is refused (exit 3)"
refused as ci tfreview apply "$P2"

step "approving as another person without their key is refused (exit 3)"
refused env TFREVIEW_USER=reviewer@example.com TFREVIEW_SIGNING_KEY="$DEMO_DIR/keys/ci" tfreview approve "$P2" --yes

step "the reviewer approves; an approval file edited after signing is refused (exit 3)"
as reviewer tfreview approve "$P2" --yes --comment "image bump reviewed"
APPROVAL=$(ls "$TFREVIEW_STORE/approvals/$P2/"*.json)
cp "$APPROVAL" "$DEMO_DIR/approval.orig"
sed -i 's/image bump reviewed/image bump and IAM change reviewed/' "$APPROVAL"
refused as ci tfreview apply "$P2" --steps 25,100 --bake 3 \
  --verify-cmd 'test -n "$TFREVIEW_TEST_URL" && echo "smoke test against $TFREVIEW_TEST_URL"'
cp "$DEMO_DIR/approval.orig" "$APPROVAL"   # put the signed original back

ALARM="$APP-$ENV_NAME-5xx"
step "a CloudWatch alarm gates the release: it fires after the first traffic step, so traffic goes back to blue"
# The sandbox sets the alarm to ALARM at the first traffic shift (as a burst of 5xx errors on the new colour would).
python3 - "$AWS_ENDPOINT_URL" "$ALARM" <<'PY'
import sys
from tfreview.aws import client
from tfreview.sandbox import set_remote_alarm
endpoint, name = sys.argv[1], sys.argv[2]
client("cloudwatch").put_metric_alarm(
    AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
    Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
set_remote_alarm(endpoint, name, "ALARM", "Threshold Crossed: 1 out of the last 1 datapoints [37.0] was greater "
                 "than the threshold (5.0)", after_shifts=1)
PY
set +e
as ci tfreview apply "$P2" --steps 25,100 --bake 3 --alarm "$ALARM" \
  --verify-cmd 'test -n "$TFREVIEW_TEST_URL" && echo "smoke test against $TFREVIEW_TEST_URL"'
rc=$?
set -e
echo "exit code: $rc"; [ "$rc" = 1 ] || { echo "expected exit 1: the alarm stops the release"; exit 1; }
tfreview status --app "$APP" --env "$ENV_NAME"     # all traffic back on blue; the last release names the alarm
tfreview history --app "$APP" --release "$P2"      # the alarm, its reason and when it fired
python3 -c 'import sys; from tfreview.sandbox import set_remote_alarm as s; s(sys.argv[1], sys.argv[2], "OK", "errors gone")' \
  "$AWS_ENDPOINT_URL" "$ALARM"

step "1.1.1, the fix: package -> plan -> approve -> apply, gated by the same alarm (OK now)"
as ci tfreview package --app "$APP" --version 1.1.1
P2=$(as ci tfreview plan --app "$APP" --version 1.1.1 --env "$ENV_NAME" --format json | plan_id)
as reviewer tfreview approve "$P2" --yes --comment "the fix reviewed"

step "apply: blue/green rollout to the idle colour, then traffic shift"
as ci tfreview apply "$P2" --steps 25,100 --bake 3 --alarm "$ALARM" \
  --verify-cmd 'test -n "$TFREVIEW_TEST_URL" && echo "smoke test against $TFREVIEW_TEST_URL"'

step "status"
tfreview status --app "$APP" --env "$ENV_NAME"

step "rollback: traffic back to the previous colour in one command"
as reviewer tfreview rollback --app "$APP" --env "$ENV_NAME" --yes
tfreview status --app "$APP" --env "$ENV_NAME"

step "history, the signed audit log, a checkpoint, and stored reports"
tfreview history --app "$APP"
tfreview history --app "$APP" --release "$P2"   # the release expanded: its traffic steps
tfreview audit verify
as security tfreview audit checkpoint --output "$DEMO_DIR/checkpoint.json"
tfreview show "$P2" --format html --output "$DEMO_DIR/report-$P2.html"
tfreview show "$P2" --format markdown --output "$DEMO_DIR/report-$P2.md"
tfreview report "$P2" --format json --output "$DEMO_DIR/audit-report-$P2.json"

step "an auditor checks the approval with stock OpenSSH, no tfreview"
python3 - "$DEMO_DIR/audit-report-$P2.json" "$DEMO_DIR" <<'PY'
import json, sys
report, out = json.load(open(sys.argv[1])), sys.argv[2]
s = next(x for x in report["statements"] if x["what"].startswith("approve by"))
open(f"{out}/allowed_signers", "w").write(report["allowed_signers"][str(s["policy_version"])])
open(f"{out}/statement", "w").write(s["statement"])
open(f"{out}/statement.sig", "w").write(s["signature"])
PY
(cd "$DEMO_DIR" && ssh-keygen -Y verify -f allowed_signers -I reviewer@example.com -n tfreview -s statement.sig < statement)

step "the release report: approvals with their signatures, the watched rollout, each traffic step, the rollback after it"
# The HTML draws the traffic per colour and green's deployment timeline as inline SVG.
tfreview report --release "$P2" --format html --output "$DEMO_DIR/release-$P2.html"
tfreview report --release "$P2" --format markdown --output "$DEMO_DIR/release-$P2.md"
grep -q 'data-series="green"' "$DEMO_DIR/release-$P2.html" || { echo "the release report has no traffic chart"; exit 1; }
grep -q 'data-series="healthy"' "$DEMO_DIR/release-$P2.html" || { echo "the release report has no task chart"; exit 1; }
sed -n '/^## Release/,/^## Audit trail/p' "$DEMO_DIR/release-$P2.md"
step "what the webhook receiver got (the JSON webhook's titles; the Mattermost copy is the same, Markdown-escaped)"
python3 - "$DEMO_DIR/notifications.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    got = json.loads(line)
    if got["path"] == "/webhook":
        message = json.loads(got["body"])
        print(f"  {message['title']}")
        print("    " + message["message"].splitlines()[0])
PY

step "the evidence pack of the day, checked with its own verify.sh (ssh-keygen and sha256sum only)"
DAY=$(date -u +%F)
tfreview audit export --since "$DAY" --until "$DAY" --output "$DEMO_DIR/evidence-$DAY"
sh "$DEMO_DIR/evidence-$DAY/verify.sh"
head -n 5 "$DEMO_DIR/evidence-$DAY/index.csv"

echo "store: $TFREVIEW_STORE"
echo "reports: $DEMO_DIR/report-$P2.html $DEMO_DIR/report-$P2.md"
echo "release reports: $DEMO_DIR/release-$P2.html $DEMO_DIR/release-$P2.md"
echo "evidence pack: $DEMO_DIR/evidence-$DAY (notifications received: $DEMO_DIR/notifications.jsonl)"
step "demo done"
