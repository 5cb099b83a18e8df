#!/usr/bin/env bash
# Restore drill: restore one backup written by compose's backup service (a gzipped plain
# `pg_dump --no-owner --no-privileges`) into a scratch database, then compare the exact row
# count of every table — each partition too — with the source database.
#
#   deploy/restore.sh [--source DB] [--scratch DB] [--keep] BACKUP.sql.gz
#   deploy/restore.sh [--source DB] [--scratch DB] --compare-only
#
# Connection settings come from libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD),
# as in the backup service; the source defaults to PGDATABASE (else "whalefall"), the
# scratch database to "<source>_restore_drill". The scratch database is created on the same
# server and dropped afterwards unless --keep is given; an existing database of that name
# is replaced only if an earlier drill created it (it carries the drill's comment).
# --compare-only compares a scratch database kept by an earlier drill (--keep) again,
# without restoring; it never drops it.
#
# Prints one line per table (source count, restored count, OK or DIFFERS) and the time the
# restore took. Exit status: 0 when every count matches, 1 when any differs or a table is
# missing on either side, 2 when the backup cannot be read or restored, 64 on bad usage.
# Counts match only if the source has not changed since the backup was taken: drill
# against a copy, a quiet moment, or a dump taken just before.
set -euo pipefail

DRILL_COMMENT="whalefall restore drill scratch database"
source_db="${PGDATABASE:-whalefall}"
scratch_db=""
keep=0
compare_only=0

usage() {
    sed -n '5,7p' "$0" | sed 's/^# *//' >&2
    exit 64
}

while [ $# -gt 0 ]; do
    case "$1" in
        --source) source_db="${2:?--source needs a database name}"; shift 2 ;;
        --scratch) scratch_db="${2:?--scratch needs a database name}"; shift 2 ;;
        --keep) keep=1; shift ;;
        --compare-only) compare_only=1; keep=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) break ;;
    esac
done
if [ "$compare_only" -eq 1 ]; then
    [ $# -eq 0 ] || usage
    backup=""
else
    [ $# -eq 1 ] || usage
    backup="$1"
fi
scratch_db="${scratch_db:-${source_db}_restore_drill}"

if [ "$scratch_db" = "$source_db" ]; then
    echo "the scratch database must not be the source database ($source_db)" >&2
    exit 64
fi
if [ "$compare_only" -eq 0 ] && [ ! -r "$backup" ]; then
    echo "cannot read backup $backup" >&2
    exit 2
fi

psql_on() {
    local db="$1"
    shift
    psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc -d "$db" "$@"
}

# The exact row count of every table and partition outside the system schemas, as
# "schema.table<TAB>count" lines sorted by name: a partitioned table counts all its
# partitions' rows, each partition (and any other table) only its own. query_to_xml runs
# one COUNT(*) per table inside a single statement, so all counts come from one snapshot.
COUNT_SQL="
SELECT format('%s.%s', n.nspname, c.relname) || E'\t' ||
       (xpath('/row/c/text()',
              query_to_xml(format('SELECT count(*) AS c FROM %s %I.%I',
                                  CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY' END,
                                  n.nspname, c.relname),
                           false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
ORDER BY 1"

row_counts() {
    psql_on "$1" -A -t -c "$COUNT_SQL" | LC_ALL=C sort
}

drop_scratch() {
    psql_on postgres -c "DROP DATABASE IF EXISTS \"${scratch_db//\"/\"\"}\" WITH (FORCE)" >/dev/null
}

existing_comment="$(psql_on postgres -A -t -v db="$scratch_db" <<'SQL'
SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = :'db'
SQL
)"
exists="$(psql_on postgres -A -t -v db="$scratch_db" <<'SQL'
SELECT count(*) FROM pg_database WHERE datname = :'db'
SQL
)"
if [ "$compare_only" -eq 1 ]; then
    if [ "$exists" != "1" ] || [ "$existing_comment" != "$DRILL_COMMENT" ]; then
        echo "no scratch database $scratch_db left by an earlier drill (run one with --keep)" >&2
        exit 64
    fi
    took=""
else
    if [ "$exists" = "1" ]; then
        if [ "$existing_comment" != "$DRILL_COMMENT" ]; then
            echo "database $scratch_db exists and was not created by a restore drill: not touching it" >&2
            exit 64
        fi
        drop_scratch
    fi

    echo "checking $backup"
    if ! gzip -t "$backup"; then
        echo "backup $backup is not a valid gzip file" >&2
        exit 2
    fi

    quoted_scratch="\"${scratch_db//\"/\"\"}\""
    psql_on postgres -c "CREATE DATABASE $quoted_scratch" >/dev/null
    echo "COMMENT ON DATABASE $quoted_scratch IS :'comment'" |
        psql_on postgres -v comment="$DRILL_COMMENT" >/dev/null
    if [ "$keep" -eq 0 ]; then
        trap drop_scratch EXIT
    fi

    echo "restoring into $scratch_db"
    started=$(date +%s.%N)
    if ! gzip -dc "$backup" | psql_on "$scratch_db" -o /dev/null; then
        echo "restore FAILED: $backup could not be restored into $scratch_db" >&2
        exit 2
    fi
    finished=$(date +%s.%N)
    restore_seconds=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.1f", b - a }')
    echo "restore took ${restore_seconds} s ($(du -h "$backup" | cut -f1) compressed)"
    took="; restore took ${restore_seconds} s"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; if [ "$keep" -eq 0 ]; then drop_scratch; fi' EXIT
row_counts "$source_db" >"$tmp/source"
row_counts "$scratch_db" >"$tmp/restored"

# One line per table seen on either side; "-" where a side lacks it.
LC_ALL=C join -t $'\t' -a 1 -a 2 -e - -o 0,1.2,2.2 "$tmp/source" "$tmp/restored" >"$tmp/joined"
status=0
differing=0
tables=0
printf '%-60s %14s %14s  %s\n' "table" "source" "restored" "result"
while IFS=$'\t' read -r table source restored; do
    tables=$((tables + 1))
    if [ "$source" = "$restored" ]; then
        result="OK"
    else
        result="DIFFERS"
        differing=$((differing + 1))
        status=1
    fi
    printf '%-60s %14s %14s  %s\n' "$table" "$source" "$restored" "$result"
done <"$tmp/joined"

if [ "$status" -eq 0 ]; then
    echo "restore drill passed: $tables tables, every row count matches${took}"
else
    echo "restore drill FAILED: $differing of $tables tables differ${took}" >&2
fi
exit "$status"
