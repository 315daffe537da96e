#!/usr/bin/env bash
# Runs the bundled CLI the way a user would: a bare `deno run` from an empty directory, with no
# node_modules and no network, against the sample replica shipped in the repo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DENO=${DENO:-"npx -y deno@2.9.6"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/dist/litewarden.js" "$work/"
cd "$work"
run() { $DENO run --no-remote --no-npm --no-config -A litewarden.js "$@"; }
run --help >/dev/null
run list "file://$root/samples/vaultwarden-replica" >/dev/null
echo "bundle ok: dist/litewarden.js runs --help and list without node_modules"
