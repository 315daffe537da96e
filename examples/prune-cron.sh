#!/bin/sh
# Nightly upkeep of the Vaultwarden replica (see examples/crontab):
#   1. litewarden prune --apply: keep 7 daily, 4 weekly and 6 monthly restore points (the newest
#      point and its chain are always kept; nothing younger than --min-age is deleted);
#   2. litewarden verify: prove that what is left restores to a healthy Vaultwarden database and
#      is fresh, report to a healthchecks-style URL and write Prometheus gauges.
# Exit status: prune's when it failed, else verify's (README: exit codes).
#
# Environment (default in brackets):
#   LITEWARDEN_DB             the database, as named in litestream.yml [/data/db.sqlite3]
#   LITESTREAM_CONFIG         Litestream's config, with the replica [/etc/litestream.yml]
#   LITEWARDEN_PRUNE_ARGS     keep rules [--keep-daily 7 --keep-weekly 4 --keep-monthly 6]
#   LITEWARDEN_VERIFY_ARGS    more verify arguments, split on spaces [--app vaultwarden]
#   LITEWARDEN_MAX_AGE        verify fails (exit 8) when the newest point is older [1h]
#   LITEWARDEN_PING_URL       e.g. https://hc-ping.com/<uuid>; /fail is appended on failure [none]
#   LITEWARDEN_METRICS_FILE   e.g. /var/lib/node_exporter/textfile/litewarden.prom [none]
#   LITEWARDEN_BIN            the program [litewarden]
# The credentials come from the config's ${…} variables or LITESTREAM_*/AWS_* as for the container.
set -u

bin=${LITEWARDEN_BIN:-litewarden}
db=${LITEWARDEN_DB:-/data/db.sqlite3}
config=${LITESTREAM_CONFIG:-/etc/litestream.yml}
prune_args=${LITEWARDEN_PRUNE_ARGS:---keep-daily 7 --keep-weekly 4 --keep-monthly 6}
verify_args=${LITEWARDEN_VERIFY_ARGS---app vaultwarden}
max_age=${LITEWARDEN_MAX_AGE:-1h}
ping_url=${LITEWARDEN_PING_URL:-}
metrics_file=${LITEWARDEN_METRICS_FILE:-}

# shellcheck disable=SC2086 # the keep rules are split on spaces on purpose
"$bin" prune "$db" --config "$config" $prune_args --apply --json
prune_rc=$?

if [ "$prune_rc" -ne 0 ]; then
  # verify would report success for a replica prune could not clean up: ping the failure here.
  echo "prune-cron: litewarden prune failed (exit $prune_rc)" >&2
  if [ -n "$ping_url" ] && command -v curl >/dev/null 2>&1; then
    curl -fsS -m 10 --retry 3 --data-raw "litewarden prune failed (exit $prune_rc)" \
      "${ping_url%/}/fail" >/dev/null || echo "prune-cron: ping failed" >&2
  fi
  ping_url=""
fi

# shellcheck disable=SC2086 # split on spaces on purpose
set -- verify "$db" --config "$config" $verify_args --max-age "$max_age"
[ -n "$ping_url" ] && set -- "$@" --ping-url "$ping_url"
[ -n "$metrics_file" ] && set -- "$@" --metrics-file "$metrics_file"
"$bin" "$@"
verify_rc=$?

[ "$prune_rc" -ne 0 ] && exit "$prune_rc"
exit "$verify_rc"
