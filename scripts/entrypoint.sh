#!/bin/sh
# litewarden container entrypoint: the pre-start gate in front of Vaultwarden (or any app whose
# SQLite database Litestream replicates). POSIX sh.
#
#   1. No database on disk: `litewarden restore --if-db-not-exists --if-replica-exists` from the
#      replica in $LITESTREAM_CONFIG. Finding no backup is fine only on a genuine first boot: once
#      a backup has been seen there (the replica marker), a missing or empty replica stops the
#      container (exit 3) instead of starting the app on an empty database; a replica whose newest
#      point is older than the one seen before stops it too (exit 5), unless the loss is accepted.
#   2. A database on disk (just restored, or left from an earlier start of this container):
#      `litewarden verify --file` on it. A failure stops the container.
#   3. `exec litestream replicate -exec "<app>"`, with `litewarden companion` in the background:
#      it writes a heartbeat with the live database's position to the replica every
#      $LITEWARDEN_HEARTBEAT_INTERVAL (so `verify` tells a quiet vault from a dead replicator) and,
#      when nothing was restored, records the replica as seen as soon as Litestream has uploaded a
#      restorable snapshot (restore records it itself). It exits after a last heartbeat when
#      Litestream exits.
#
# A stop is one line on stderr, `litewarden-entrypoint: not starting <app>: <why>`, and the exit
# code of the litewarden command that failed (README: exit codes).
#
# Usage: entrypoint.sh [APP_COMMAND [ARG...]]
#
# Environment (default in brackets):
#   LITEWARDEN_DB                         the database, as named in litestream.yml [/data/db.sqlite3]
#   LITESTREAM_CONFIG                     Litestream's config, read by both tools [/etc/litestream.yml]
#   LITEWARDEN_APP_COMMAND                the app, when no arguments are given [/start.sh]
#   LITEWARDEN_ALLOW_FRESH_START=1        start empty although a backup was seen before
#   LITEWARDEN_EXPECT_REPLICA=1           a backup must exist: no first-boot exception at all
#                                         (with LITEWARDEN_ALLOW_FRESH_START=1: start over)
#   LITEWARDEN_ON_DAMAGE=restore-newest-intact
#                                         read by restore: a damaged chain, or a newest point
#                                         older than the one seen before, starts from the newest
#                                         intact point (logged with the span lost) instead of
#                                         refusing (exit 5)
#   LITEWARDEN_START_ON_VERIFY_FAILURE=1  start the app even when verify fails (logged)
#   LITEWARDEN_VERIFY_ARGS                arguments of `verify --file`, split on spaces
#                                         [--app vaultwarden --gate]
#   LITEWARDEN_STRICT=1                   add --strict: an orphan row fails the gate too
#   LITEWARDEN_HEARTBEAT_INTERVAL         time between the companion's heartbeats; 0: no
#                                         companion, only `mark` as before [60s]
#   LITEWARDEN_MARK_WAIT                  how long the replica marker waits for the first upload;
#                                         0: no marker [15m]
#   LITEWARDEN_MARK_INTERVAL              time between its looks [5s]
#   LITEWARDEN_BIN, LITESTREAM_BIN        the programs [litewarden, litestream]
set -u

bin=${LITEWARDEN_BIN:-litewarden}
litestream=${LITESTREAM_BIN:-litestream}
db=${LITEWARDEN_DB:-/data/db.sqlite3}
config=${LITESTREAM_CONFIG:-/etc/litestream.yml}
verify_args=${LITEWARDEN_VERIFY_ARGS---app vaultwarden --gate}
mark_wait=${LITEWARDEN_MARK_WAIT:-15m}
mark_interval=${LITEWARDEN_MARK_INTERVAL:-5s}
heartbeat_interval=${LITEWARDEN_HEARTBEAT_INTERVAL:-60s}

log() { printf 'litewarden-entrypoint: %s\n' "$*" >&2; }

is_true() {
  case "$1" in
  1 | [Tt][Rr][Uu][Ee] | [Yy][Ee][Ss]) return 0 ;;
  *) return 1 ;;
  esac
}

# The gate judges like Vaultwarden (verify --gate); STRICT fails what Vaultwarden lives with too.
if is_true "${LITEWARDEN_STRICT:-}"; then verify_args="$verify_args --strict"; fi

# What an exit code of litewarden means (README: exit codes).
meaning() {
  case "$1" in
  2) echo "usage or config error" ;;
  3) echo "no backup found" ;;
  4) echo "storage unreachable or access denied" ;;
  5) echo "replica damaged" ;;
  6) echo "database unhealthy" ;;
  7) echo "application check failed" ;;
  8) echo "backup stale" ;;
  9) echo "refused to overwrite" ;;
  10) echo "no space left on the local disk" ;;
  126 | 127) echo "cannot run $bin" ;;
  130) echo "interrupted" ;;
  *) echo "unexpected error" ;;
  esac
}

# One argument quoted for Litestream's -exec parser (go-shellwords): it's -> 'it'\''s'.
quote() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

if [ "$#" -gt 0 ]; then
  app=""
  for arg in "$@"; do app="$app${app:+ }$(quote "$arg")"; done
  app_name=$1
else
  app=${LITEWARDEN_APP_COMMAND:-/start.sh}
  app_name=$app
fi

stop() {
  log "not starting $app_name: $1"
  exit "$2"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/litewarden-entrypoint.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# 1. Restore when there is no database. stderr is kept to quote litewarden's reason on failure.
restored=0
if [ ! -e "$db" ]; then
  # EXPECT drops the first-boot exception; with ALLOW_FRESH_START as well, the operator starts
  # over on purpose, and restore's own fresh-start rule applies (README: start over).
  if is_true "${LITEWARDEN_EXPECT_REPLICA:-}" && ! is_true "${LITEWARDEN_ALLOW_FRESH_START:-}"; then
    if_replica_exists=""
  else
    if_replica_exists="--if-replica-exists"
  fi
  # shellcheck disable=SC2086 # $if_replica_exists is one flag or nothing
  "$bin" restore "$db" --config "$config" --if-db-not-exists $if_replica_exists 2>"$tmp/err"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    # litewarden's last error line becomes the reason; everything else it said goes first.
    why=$(sed -n 's/^litewarden: //p' "$tmp/err" | tail -n 1)
    grep -vxF "litewarden: $why" "$tmp/err" >&2
    if [ "$rc" -eq 3 ] && [ -z "$if_replica_exists" ]; then
      why="${why:-no backup found}; LITEWARDEN_EXPECT_REPLICA=1 requires a backup (to start over on purpose, start once with LITEWARDEN_EXPECT_REPLICA=1 and LITEWARDEN_ALLOW_FRESH_START=1)"
    fi
    stop "restore failed (exit $rc, $(meaning "$rc")): ${why:-see above}" "$rc"
  fi
  cat "$tmp/err" >&2
  if [ -e "$db" ]; then
    restored=1
  else
    log "no backup to restore: starting $app_name on a new database (first boot)"
  fi
fi

# 2. Verify what will be served (skipped only on a first boot: there is nothing yet).
if [ -e "$db" ]; then
  # shellcheck disable=SC2086 # the arguments are split on spaces on purpose
  "$bin" verify --file "$db" $verify_args >"$tmp/out"
  rc=$?
  cat "$tmp/out"
  if [ "$rc" -ne 0 ]; then
    why=$(sed -n 's/^  FAIL  *//p' "$tmp/out" | head -n 1 | tr -s ' ')
    what="verify --file $db failed (exit $rc, $(meaning "$rc")): ${why:-see the report above}"
    if is_true "${LITEWARDEN_START_ON_VERIFY_FAILURE:-}"; then
      log "$what; starting $app_name anyway (LITEWARDEN_START_ON_VERIFY_FAILURE=1)"
    else
      stop "$what; set LITEWARDEN_START_ON_VERIFY_FAILURE=1 to start anyway" "$rc"
    fi
  fi
fi

# 3. The companion beside Litestream: heartbeats, and the replica marker once Litestream has
#    uploaded a backup (restore already wrote it, if it ran). It stays a child of this PID, i.e.
#    of Litestream after the exec below, and exits after a last heartbeat when Litestream exits.
#    --parent-pid: this PID, which Litestream keeps; the companion may start after a quick exit.
mark_args=""
if [ "$restored" -eq 0 ] && [ "$mark_wait" != "0" ]; then
  mark_args="--mark-wait $mark_wait --mark-interval $mark_interval"
fi
if [ "$heartbeat_interval" != "0" ]; then
  # shellcheck disable=SC2086 # $mark_args is two flags with values, or nothing
  "$bin" companion "$db" --config "$config" --heartbeat-interval "$heartbeat_interval" \
    $mark_args --with-parent --parent-pid "$$" </dev/null &
elif [ -n "$mark_args" ]; then
  "$bin" mark "$db" --config "$config" --wait "$mark_wait" --interval "$mark_interval" \
    --with-parent </dev/null &
fi

rm -rf "$tmp"
trap - EXIT INT TERM
exec "$litestream" replicate -config "$config" -exec "$app"
