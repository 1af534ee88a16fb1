#!/usr/bin/env bash
# Install the pinned deployment CLIs (@serverless-devs/s, @alicloud/fun) into deploy/node/node_modules.
#
# Idempotent and quick when already installed: `npm ci` runs only when package-lock.json changed since
# the last successful install (a stamp holds its checksum). Used by tests/deploy (session fixture),
# deploy/deploy.sh and by hand. Needs npm and the npm registry (or a warm npm cache) the first time.
#
#   deploy/node/install.sh        # prints the bin directory on the last line of stdout
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if ! command -v npm >/dev/null 2>&1; then
  echo "install.sh: npm not found; install Node.js 18+ (with npm) to use s/fun" >&2
  exit 127
fi

stamp="node_modules/.outpaint-installed"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x node_modules/.bin/s && -x node_modules/.bin/fun ]]; then
  echo "$here/node_modules/.bin"
  exit 0
fi

start=$(date +%s)
# --ignore-scripts: neither CLI needs its install scripts to run (fun's only checks the Node version);
# a lock-file install from the registry must not run code at install time.
npm ci --no-audit --no-fund --no-update-notifier --ignore-scripts --loglevel=error >&2
echo "$want" > "$stamp"
echo "install.sh: installed s and fun in $(( $(date +%s) - start )) s" >&2
echo "$here/node_modules/.bin"
