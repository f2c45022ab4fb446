#!/usr/bin/env bash
# npm test: the Deno suite (unit, integration, e2e), then the panel's tests when present.
# Integration tests use embedded PGlite, or the Postgres in DATABASE_URL when it is set.
# Row locks are only tested for real on PostgreSQL (PGlite has one connection), so when
# DATABASE_URL is not set and a PostgreSQL answers at TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), the concurrency tests also run there, on a
# database of their own that is dropped afterwards. Without one they are reported as skipped.
# Ends with one plain line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
status=0
log=$(mktemp)
# Everything the tests put in a temporary directory goes into one of their own, which must be
# empty again at the end: what a test starts (stacks that write their secrets, databases,
# browsers, CLI homes) it also removes. Anything left there is listed and counted as a failure.
# It is a /tmp of their own, with /tmp's mode: the hosted-like cluster runs initdb as the
# `postgres` OS user inside it.
scratch=$(mktemp -d -t byok-test-tmp-XXXXXX)
chmod 1777 "$scratch"
export TMPDIR="$scratch"
trap 'rm -rf "$scratch" "$log"' EXIT

count() { # $1: passed, $2: failed
  passed=$((passed + ${1:-0}))
  failed=$((failed + ${2:-0}))
}

deno test --allow-all "$@" tests/ 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
line=$(grep -aE '\| [0-9]+ passed.*\| [0-9]+ failed' "$log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g')
count "$(echo "$line" | sed -nE 's/.*\| ([0-9]+) passed.*/\1/p')" \
      "$(echo "$line" | sed -nE 's/.*\| ([0-9]+) failed.*/\1/p')"
[ -n "$line" ] || { status=1; failed=$((failed + 1)); }

CONCURRENCY_TESTS=(tests/integration/flows_test.ts tests/integration/sharing_test.ts tests/security/replay_test.ts)
admin_url=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [ -z "${DATABASE_URL:-}" ] && command -v psql >/dev/null && psql "$admin_url" -qtAc 'select 1' >/dev/null 2>&1; then
  name="byok_concurrency_$$"
  psql "$admin_url" -qc "create database $name" >/dev/null
  echo "Concurrency tests on PostgreSQL ($name):"
  DATABASE_URL="${admin_url%/*}/$name" deno test --allow-all "${CONCURRENCY_TESTS[@]}" 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  psql "$admin_url" -qc "drop database if exists $name with (force)" >/dev/null
  line=$(grep -aE '\| [0-9]+ passed.*\| [0-9]+ failed' "$log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g')
  count "$(echo "$line" | sed -nE 's/.*\| ([0-9]+) passed.*/\1/p')" \
        "$(echo "$line" | sed -nE 's/.*\| ([0-9]+) failed.*/\1/p')"
  [ -n "$line" ] || { status=1; failed=$((failed + 1)); }
else
  echo "Concurrency tests on PostgreSQL: skipped (DATABASE_URL is set, or no PostgreSQL at TEST_POSTGRES_URL)"
fi

if node -e 'process.exit(require("./package.json").scripts["test:ui"] ? 0 : 1)'; then
  npm run --silent test:ui 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  # The UI runner prints its own "N passed, N failed" line last.
  line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  count "$(echo "$line" | sed -nE 's/^([0-9]+) passed.*/\1/p')" \
        "$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')"
  [ -n "$line" ] || { status=1; failed=$((failed + 1)); }
fi

left=$(find "$scratch" -mindepth 1 -maxdepth 1 | sed "s|^$scratch/||" | sort)
if [ -n "$left" ]; then
  echo "The tests left these behind in their temporary directory:"
  echo "$left" | sed 's/^/  /'
  failed=$((failed + 1))
  status=1
fi
echo "$passed passed, $failed failed"
exit $status
