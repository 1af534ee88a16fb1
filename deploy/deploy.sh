#!/usr/bin/env bash
# `make deploy` / `make remove`: Serverless Devs on s.yaml, everything it needs declared there.
#
#   deploy/deploy.sh [deploy]   roles (ram), log store (fc3 logConfig: auto), functions and triggers
#   deploy/deploy.sh remove     `s remove`: functions, triggers and roles; never the bucket or its objects
#
# Everything secret or account-specific comes from the environment:
#
#   ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET   deployer's credentials (RAM user)
#   ALIBABA_CLOUD_ACCOUNT_ID                                       main account id (role/trigger ARNs)
#   ALIBABA_CLOUD_SECURITY_TOKEN                                   optional, with STS credentials
#   OUTPAINT_BUCKET, DASHSCOPE_API_KEY                             required by s.yaml (the key: deploy only)
#   OUTPAINT_REGION (cn-beijing), DEPLOY_LOG_PROJECT, DEPLOY_LOG_STORE,
#   OUTPAINT_SUBMIT_QPS, OUTPAINT_MAX_CONCURRENT_TASKS, ...        optional, see s.yaml vars
#
# Every check that needs no build comes first: the environment, the s CLI, `s preview` (renders s.yaml)
# and the plan it prints (what will be created, or removed). DEPLOY_DRY_RUN=1 stops there, with
# placeholders for whatever is not set, and exits 0. Only then is the code package built (deploy).
# The credentials go into a throw-away Serverless Devs home (a temp dir, removed on exit), never into
# ~/.s or the repository.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

action="${1:-deploy}"
[[ "$action" == "deploy" || "$action" == "remove" ]] || { echo "usage: $0 [deploy|remove]" >&2; exit 2; }
python="${PYTHON:-$root/.venv/bin/python}"
dry_run="${DEPLOY_DRY_RUN:-}"
fail() { echo "$action: $*" >&2; exit 1; }

# The placeholders are render.py's EXAMPLE_ENV values (template.yaml is rendered with the same).
declare -A placeholder=(
  [ALIBABA_CLOUD_ACCESS_KEY_ID]=placeholder-key-id
  [ALIBABA_CLOUD_ACCESS_KEY_SECRET]=placeholder-key-secret
  [ALIBABA_CLOUD_ACCOUNT_ID]=YOUR_ACCOUNT_ID
  [OUTPAINT_BUCKET]=my-outpaint-bucket
  [DASHSCOPE_API_KEY]=REPLACE_WITH_DASHSCOPE_API_KEY
)
required=(ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET ALIBABA_CLOUD_ACCOUNT_ID OUTPAINT_BUCKET)
[[ "$action" == "deploy" ]] && required+=(DASHSCOPE_API_KEY)
missing=()
for name in "${required[@]}"; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
if (( ${#missing[@]} )) && [[ "$dry_run" == "1" ]]; then
  for name in "${missing[@]}"; do export "$name=${placeholder[$name]}"; done
  echo "$action: DEPLOY_DRY_RUN=1 with placeholders for ${missing[*]}"
elif (( ${#missing[@]} )); then
  fail "missing environment variable(s): ${missing[*]}
  Export them (see docs/deploy.md, 'Environment'), for example:
    export ALIBABA_CLOUD_ACCESS_KEY_ID=... ALIBABA_CLOUD_ACCESS_KEY_SECRET=... ALIBABA_CLOUD_ACCOUNT_ID=...
    export OUTPAINT_BUCKET=my-bucket DASHSCOPE_API_KEY=sk-..."
fi
# s.yaml names the key for every command; removing needs none, so it renders with the placeholder.
export DASHSCOPE_API_KEY="${DASHSCOPE_API_KEY:-${placeholder[DASHSCOPE_API_KEY]}}"

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
[[ -x "$python" ]] || fail "$python not found: run 'make install' (or set PYTHON to a Python with PyYAML)"

s_home="$(mktemp -d)"
trap 'rm -rf "$s_home"' EXIT
export HOME="$s_home"  # s keeps its access.yaml and component cache under ~/.s
preview="$s_home/preview.json"
"$s_cli" preview -t s.yaml -o json >"$preview" || fail "s preview could not render s.yaml (above)"

if [[ "$action" == "deploy" ]]; then
  echo "deploy: plan (s.yaml as s preview renders it)"
  "$python" deploy/render.py plan --preview "$preview" | sed 's/^/  /'
else
  # Refuses (exit 2) when s.yaml holds a resource whose removal could touch the bucket.
  plan="$("$python" deploy/render.py removal --preview "$preview")" || fail "refusing to remove (above)"
  echo "remove: s remove deletes:"
  echo "$plan" | sed 's/^/  /'
fi

if [[ "$dry_run" == "1" ]]; then
  echo "$action: DEPLOY_DRY_RUN=1, stopping before 's $action'"
  exit 0
fi

if [[ "$action" == "deploy" ]]; then
  "$python" deploy/package.py --flavour all
fi

token=()
[[ -n "${ALIBABA_CLOUD_SECURITY_TOKEN:-}" ]] && token=(--SecurityToken "$ALIBABA_CLOUD_SECURITY_TOKEN")
alias_name="outpaint-deploy"
"$s_cli" config add --access "$alias_name" \
  --AccessKeyID "$ALIBABA_CLOUD_ACCESS_KEY_ID" --AccessKeySecret "$ALIBABA_CLOUD_ACCESS_KEY_SECRET" \
  --AccountID "$ALIBABA_CLOUD_ACCOUNT_ID" "${token[@]}" -f >/dev/null

if [[ "$action" == "deploy" ]]; then
  # fc3's logConfig: auto get-or-creates the SLS project and logstore under these names (its
  # FC_GENERATE_* variables), the ones the roles may write to.
  FC_GENERATE_PROJECT_NAME="$("$python" deploy/render.py var log_project --preview "$preview")"
  FC_GENERATE_LOGSTORE_NAME="$("$python" deploy/render.py var log_store --preview "$preview")"
  export FC_GENERATE_PROJECT_NAME FC_GENERATE_LOGSTORE_NAME
  echo "deploy: s deploy -y (region ${OUTPAINT_REGION:-cn-beijing}, bucket $OUTPAINT_BUCKET)"
  "$s_cli" deploy -y -t s.yaml -a "$alias_name"
  echo "deploy: done. Verify with a test upload and read the logs as docs/deploy.md ('Verify') shows."
else
  "$s_cli" remove -y -t s.yaml -a "$alias_name"
  echo "remove: removed the resources listed above; bucket $OUTPAINT_BUCKET and its objects are untouched."
fi
