#!/bin/sh
# One-shot schema set-up for Temporal on PostgreSQL, run by the temporal-schema service
# (temporalio/admin-tools). Each step is idempotent: a database that exists is kept, a
# schema at the current version is left as it is, so the service can run on every `up`.
set -eu
tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}
for db in temporal:temporal temporal_visibility:visibility; do
  name=${db%%:*}
  dir=${db##*:}
  echo "schema of $name"
  tool --db "$name" create
  tool --db "$name" setup-schema -v 0.0
  tool --db "$name" update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
done
