#!/usr/bin/env bash
# Deploy both functions with Serverless Devs: `s deploy -y` on s.yaml (called by `make deploy`, after
# `make package`). Everything secret or account-specific comes from the environment:
#
#   ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET   deployer's credentials (RAM user)
#   ALIBABA_CLOUD_ACCOUNT_ID                                       main account id (role/trigger ARNs)
#   ALIBABA_CLOUD_SECURITY_TOKEN                                   optional, with STS credentials
#   OUTPAINT_BUCKET, DASHSCOPE_API_KEY                             required by s.yaml
#   OUTPAINT_REGION (cn-beijing), DEPLOY_LOG_PROJECT, DEPLOY_LOG_STORE, DEPLOY_DEAD_LETTER_QUEUE,
#   OUTPAINT_SUBMIT_QPS, OUTPAINT_MAX_CONCURRENT_TASKS, ...        optional, see s.yaml vars
#
# The credentials go into a throw-away Serverless Devs home (a temp dir, removed on exit), never into
# ~/.s or the repository. Set DEPLOY_DRY_RUN=1 to stop after the checks and `s preview`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

fail() { echo "deploy: $*" >&2; exit 1; }

missing=()
for name in ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET ALIBABA_CLOUD_ACCOUNT_ID \
            OUTPAINT_BUCKET DASHSCOPE_API_KEY; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
if (( ${#missing[@]} )); then
  fail "missing environment variable(s): ${missing[*]}
  Export them (see docs/deploy.md, 'Environment'), for example:
    export ALIBABA_CLOUD_ACCESS_KEY_ID=... ALIBABA_CLOUD_ACCESS_KEY_SECRET=... ALIBABA_CLOUD_ACCOUNT_ID=...
    export OUTPAINT_BUCKET=my-bucket DASHSCOPE_API_KEY=sk-..."
fi

# The s CLI: the pinned one in deploy/node (installed on demand), or one on PATH.
if command -v npm >/dev/null 2>&1; then
  bin="$(deploy/node/install.sh | tail -n1)"
  s_cli="$bin/s"
elif command -v s >/dev/null 2>&1; then
  s_cli="$(command -v s)"
else
  fail "neither npm nor the Serverless Devs CLI 's' was found.
  Install Node.js 18+ with npm (then this script installs @serverless-devs/s@3.1.10 into deploy/node),
  or install s yourself: npm install -g @serverless-devs/s@3.1.10"
fi

[[ -f build/outpaint-fc.zip ]] || fail "build/outpaint-fc.zip not found: run 'make package' first"

s_home="$(mktemp -d)"
trap 'rm -rf "$s_home"' EXIT
export HOME="$s_home"  # s keeps its access.yaml and component cache under ~/.s
alias_name="outpaint-deploy"

echo "deploy: rendering s.yaml"
"$s_cli" preview -t s.yaml -o json >/dev/null

if [[ "${DEPLOY_DRY_RUN:-}" == "1" ]]; then
  echo "deploy: DEPLOY_DRY_RUN=1, stopping before 's deploy'"
  exit 0
fi

token=()
[[ -n "${ALIBABA_CLOUD_SECURITY_TOKEN:-}" ]] && token=(--SecurityToken "$ALIBABA_CLOUD_SECURITY_TOKEN")
"$s_cli" config add --access "$alias_name" \
  --AccessKeyID "$ALIBABA_CLOUD_ACCESS_KEY_ID" --AccessKeySecret "$ALIBABA_CLOUD_ACCESS_KEY_SECRET" \
  --AccountID "$ALIBABA_CLOUD_ACCOUNT_ID" "${token[@]}" -f >/dev/null
echo "deploy: s deploy -y (region ${OUTPAINT_REGION:-cn-beijing}, bucket $OUTPAINT_BUCKET)"
"$s_cli" deploy -y -t s.yaml -a "$alias_name"
echo "deploy: done. Verify with a test upload and read the logs as docs/deploy.md ('Verify') shows."
