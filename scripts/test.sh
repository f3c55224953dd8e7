#!/usr/bin/env bash
#
# Runs sqlreg's whole test suite against throwaway PostgreSQL and MariaDB
# servers (see scripts/db-servers.sh), then stops them again.
#
# Usage: bash scripts/test.sh [extra cargo test args]
#   e.g. bash scripts/test.sh -- --nocapture
#        SQLREG_PG_PORT=56432 SQLREG_MARIADB_PORT=54306 bash scripts/test.sh
#
# Needs root (it may apt-get install mariadb-server, and runs the servers as
# the postgres/mysql users), the Rust toolchain and PostgreSQL's server
# binaries (installed from Debian's packages too if absent).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/db-servers.sh
source scripts/db-servers.sh

sqlreg_db_stop_on_exit

sqlreg_db_start
echo "test.sh: PostgreSQL up on 127.0.0.1:$SQLREG_TEST_PG_PORT, MariaDB up on 127.0.0.1:$SQLREG_TEST_MARIADB_PORT" \
    "(user $SQLREG_TEST_USER, database $SQLREG_TEST_DATABASE)"

cargo test --workspace --all-features "$@"
