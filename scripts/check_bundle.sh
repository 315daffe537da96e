#!/usr/bin/env bash
# Runs the bundled CLI the way a user would: a bare `deno run` from an empty directory, with no
# node_modules, no config and no network, against the sample replica shipped in the repo:
# --help, list, restore (to a temp path), verify of the replica, verify --file of the restored copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DENO=${DENO:-"npx -y deno@2.9.6"}
replica="file://$root/samples/vaultwarden-replica"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/dist/litewarden.js" "$work/"
cd "$work"
export NO_PROGRESS=1

# Runs the bundle; on failure prints what it said and stops.
step() {
  local what=$1 out
  shift
  if ! out=$($DENO run --no-remote --no-npm --no-config -A litewarden.js "$@" 2>&1); then
    echo "bundle check failed: $what" >&2
    echo "$out" >&2
    exit 1
  fi
}

step "--help" --help
step "list" list "$replica"
step "restore" restore "$replica" -o "$work/restored.sqlite3"
[ -s "$work/restored.sqlite3" ] || { echo "bundle check failed: restore wrote nothing" >&2; exit 1; }
step "verify" verify "$replica" --app vaultwarden
step "verify --file" verify --file "$work/restored.sqlite3" --app vaultwarden
step "mark --help" mark --help
step "companion --help" companion --help
# A plain restore never writes the replica marker (only the container gate does).
[ ! -e "$root/samples/vaultwarden-replica/.litewarden" ] ||
  { echo "bundle check failed: the sample replica was written to" >&2; exit 1; }
# The S3 backend is imported lazily: prove the bundle carries it (in-process S3 test server).
(cd "$root" && $DENO run --config test_deps/deno.jsonc -A scripts/check_bundle_s3.ts "$work/litewarden.js") ||
  { echo "bundle check failed: list on S3" >&2; exit 1; }
# Likewise the SFTP backend and ssh2 (a test sshd on 127.0.0.1; skipped without sshd).
(cd "$root" && $DENO run --config test_deps/deno.jsonc -A scripts/check_bundle_sftp.ts "$work/litewarden.js") ||
  { echo "bundle check failed: list on SFTP" >&2; exit 1; }
# And age decryption (the package is loaded lazily; the payload cipher is node:crypto).
(cd "$root" && $DENO run --config test_deps/deno.jsonc -A scripts/check_bundle_age.ts "$work/litewarden.js") ||
  { echo "bundle check failed: restore of an age-encrypted replica" >&2; exit 1; }
size=$(wc -c <"$root/dist/litewarden.js")
echo "bundle ok: dist/litewarden.js ($size bytes) runs --help, list (file, S3 and SFTP), restore (also age-encrypted), verify and verify --file without node_modules"
