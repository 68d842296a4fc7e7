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
for _ in $(seq 1 50); do grep -q '^export AWS_ENDPOINT_URL' "$DEMO_DIR/sandbox.log" 2>/dev/null && break; sleep 0.2; done
eval "$(grep '^export ' "$DEMO_DIR/sandbox.log")"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

plan_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

step "1.0.0: package (build stage) -> plan -> approve -> apply (first release: creates the stack, ~90 s)"
TFREVIEW_USER=ci@example.com tfreview package --app "$APP" --version 1.0.0
P1=$(TFREVIEW_USER=ci@example.com tfreview plan --app "$APP" --version 1.0.0 --env "$ENV_NAME" --format json | plan_id)
TFREVIEW_USER=ci@example.com tfreview show "$P1" | head -n 30   # summary, risks, ECS panels
TFREVIEW_USER=reviewer@example.com tfreview approve "$P1" --yes --comment "first release"
# Creating IAM roles and security groups is risky: the default policy asks for one more approver.
TFREVIEW_USER=security@example.com tfreview approve "$P1" --yes --comment "IAM and security groups reviewed"
TFREVIEW_USER=ci@example.com tfreview apply "$P1"

step "1.1.0: package -> plan (the review shows the image change on the idle colour)"
TFREVIEW_USER=ci@example.com tfreview package --app "$APP" --version 1.1.0
TFREVIEW_USER=ci@example.com tfreview plan --app "$APP" --version 1.1.0 --env "$ENV_NAME" | tee "$DEMO_DIR/plan-1.1.0.txt"
P2=$(grep '^plan id:' "$DEMO_DIR/plan-1.1.0.txt" | awk '{print $3}')

step "apply before approval is refused (exit 3)"
set +e
TFREVIEW_USER=ci@example.com tfreview apply "$P2"; rc=$?
set -e
echo "exit code: $rc"
[ "$rc" = 3 ] || { echo "expected exit 3"; exit 1; }

step "approve (a second person) and apply: blue/green rollout to the idle colour, then traffic shift"
TFREVIEW_USER=reviewer@example.com tfreview approve "$P2" --yes --comment "image bump reviewed"
TFREVIEW_USER=ci@example.com tfreview apply "$P2" --steps 25,100 --bake 3 \
  --verify-cmd 'test -n "$TFREVIEW_TEST_URL" && echo "smoke test against $TFREVIEW_TEST_URL"'

step "status"
tfreview status --app "$APP" --env "$ENV_NAME"

step "rollback: traffic back to the previous colour in one command"
TFREVIEW_USER=reviewer@example.com tfreview rollback --app "$APP" --env "$ENV_NAME" --yes
tfreview status --app "$APP" --env "$ENV_NAME"

step "history (one line per release; --expand shows the traffic steps) and stored reports"
tfreview history --app "$APP"
tfreview history --app "$APP" --release "$P2"
tfreview show "$P2" --format html --output "$DEMO_DIR/report-$P2.html"
tfreview show "$P2" --format markdown --output "$DEMO_DIR/report-$P2.md"
# The release report: approvals, the watched rollout, each traffic step with its bake, the rollback after it;
# the HTML draws the traffic per colour and green's deployment timeline as inline SVG.
tfreview report --release "$P2" --format html --output "$DEMO_DIR/release-$P2.html"
tfreview report --release "$P2" --format markdown --output "$DEMO_DIR/release-$P2.md"
grep -q 'data-series="green"' "$DEMO_DIR/release-$P2.html" || { echo "the release report has no traffic chart"; exit 1; }
grep -q 'data-series="healthy"' "$DEMO_DIR/release-$P2.html" || { echo "the release report has no task chart"; exit 1; }
sed -n '/^## Release/,/^## Audit trail/p' "$DEMO_DIR/release-$P2.md"
echo "store: $TFREVIEW_STORE"
echo "reports: $DEMO_DIR/report-$P2.html $DEMO_DIR/report-$P2.md"
echo "release reports: $DEMO_DIR/release-$P2.html $DEMO_DIR/release-$P2.md"
step "demo done"
