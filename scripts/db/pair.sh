#!/usr/bin/env bash
#
# Primary/standby pairs of their own for destructive failover tests: a test
# that crashes, promotes, rewinds or splits a pair never touches the shared
# test servers of scripts/db-servers.sh.
#
# Usage (as root; the servers run as the postgres/mysql users):
#   bash scripts/db/pair.sh start-pg DIR PRIMARY_PORT STANDBY_PORT
#   bash scripts/db/pair.sh pg-sync DIR on|off
#   bash scripts/db/pair.sh pg-stop-primary DIR
#   bash scripts/db/pair.sh pg-promote DIR
#   bash scripts/db/pair.sh pg-rewind DIR
#   bash scripts/db/pair.sh pg-split-brain DIR
#   bash scripts/db/pair.sh pg-poolers DIR PORT_A PORT_B
#   bash scripts/db/pair.sh start-mariadb DIR PRIMARY_PORT REPLICA_PORT
#   bash scripts/db/pair.sh mariadb-stop-primary DIR
#   bash scripts/db/pair.sh mariadb-promote DIR
#   bash scripts/db/pair.sh standby DIR stop|start
#   bash scripts/db/pair.sh stop DIR
#
# DIR must not exist yet (start-*) and its path must stay short (unix socket
# paths are limited to ~100 bytes). Both servers listen on 127.0.0.1 only,
# with the test user, password and database of scripts/db-servers.sh.
#
# Layout of DIR: one directory per server, `a` (the first primary) and `b`
# (the first standby), each with its control helper `a.ctl` / `b.ctl` (the
# same helpers as scripts/db-servers.sh: start, stop, kill, status), its port
# in `a.port` / `b.port`, and the roles in `primary` and `standby` (each holds
# `a` or `b`). Promotion swaps the roles, so every command keeps acting on
# the server that has the role *now*.
#
# `pg-poolers` puts a PgBouncer in transaction mode in front of each server
# of a PostgreSQL pair (one pooler per host, as scripts/db-servers.sh starts
# them: `pgbouncer-a` / `pgbouncer-b`, helpers `pgbouncer-a-ctl` /
# `pgbouncer-b-ctl`, ports in `pgbouncer-a.port` / `pgbouncer-b.port`); a
# pooler stays up when its server crashes, as in production. `stop` stops
# them before the servers.
#
# PostgreSQL: the standby is cloned with `pg_basebackup -R` while
# synchronous_standby_names is still empty (a standby cloned from a
# synchronous primary inherits the setting and, once promoted, waits forever
# for a standby of its own); it streams as application_name `pair_a` /
# `pair_b`, without a replication slot (wal_keep_size keeps the WAL), so a
# crashed node leaves nothing behind on the other one. wal_log_hints and
# full_page_writes stay on for pg_rewind; fsync is off for speed, but
# synchronous_commit is left on, so a synchronous commit really waits for
# the standby.
#
# MariaDB: GTID replication, the replica started with --read-only; both
# servers write a binary log (log_slave_updates), so the promoted replica
# serves GTIDs as a primary does.
#
# Servers are only ever stopped through their pid files / pg_ctl, never by
# process name. `stop` kills both servers (their data is thrown away) and
# removes DIR; it is safe to call twice. scripts/db-servers.sh's
# sqlreg_db_stop calls it for every pair left in $SQLREG_TEST_DB_DIR/pairs.
set -uo pipefail

_SQLREG_PAIR_DB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The test user, password and database, and the server helpers.
# shellcheck source=scripts/db-servers.sh
source "$_SQLREG_PAIR_DB/../db-servers.sh"

_SQLREG_TIMEOUT=${SQLREG_DB_START_TIMEOUT:-60}

die() {
    printf 'pair: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '8,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

role() { cat "$DIR/$1"; }
port_of() { cat "$DIR/$1.port"; }

# wait_for WHAT COMMAND...: runs COMMAND until it succeeds or the timeout
# passes (then fails, saying WHAT it waited for).
wait_for() {
    local what=$1 end=$((SECONDS + _SQLREG_TIMEOUT))
    shift
    until "$@"; do
        if [ "$SECONDS" -ge "$end" ]; then
            printf 'pair: gave up after %ss waiting for %s\n' "$_SQLREG_TIMEOUT" "$what" >&2
            return 1
        fi
        sleep 0.05
    done
}

new_dir() {
    [ ! -e "$DIR" ] || die "$DIR already exists"
    mkdir -p "$DIR" && chmod 755 "$DIR" || die "cannot create $DIR"
    runuser -u nobody -- test -x "$DIR" ||
        die "other users cannot reach $DIR (the servers run as postgres/mysql): make its parents traversable"
    # A start that fails stops what it started (DIR and its logs stay for `stop`).
    trap 'start_failed' EXIT
}

start_failed() {
    local rc=$? node
    [ "$rc" -ne 0 ] || return 0
    for node in b a; do
        if [ -x "$DIR/$node.ctl" ]; then
            "$DIR/$node.ctl" kill
        fi
    done
    printf 'pair: start failed; logs are in %s (remove it with: %s stop %s)\n' "$DIR" "$0" "$DIR" >&2
    exit "$rc"
}

need_kind() {
    [ -f "$DIR/kind" ] || die "$DIR holds no pair"
    [ "$(cat "$DIR/kind")" = "$1" ] || die "$DIR holds a $(cat "$DIR/kind") pair, not $1"
    if [ "$1" = pg ]; then
        _sqlreg_find_pg || die "no PostgreSQL binaries"
    fi
}

# --- PostgreSQL ---------------------------------------------------------

# psql_at NODE SQL: runs SQL as the postgres superuser through NODE's socket,
# printing unaligned rows.
psql_at() {
    PGCONNECT_TIMEOUT=5 "$_SQLREG_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR/$1" \
        -p "$(port_of "$1")" -U postgres -d postgres -c "$2"
}

# query_is NODE SQL VALUE: the query's output is VALUE.
query_is() { [ "$(psql_at "$1" "$2" 2>/dev/null)" = "$3" ]; }

streaming_to() {
    query_is "$1" "SELECT count(*) FROM pg_stat_replication \
        WHERE application_name = 'pair_$2' AND state = 'streaming'" 1
}

pg_node_init() {
    local node=$1 port=$2 dir=$DIR/$1
    mkdir -p "$dir" && chown postgres: "$dir" && chmod 755 "$dir" || return 1
    printf '%s\n' "$port" >"$DIR/$node.port"
    _sqlreg_write_pg_helper "$DIR/$node.ctl" "$dir/data" "$dir/postgresql.log" "$port"
}

# The settings only this node has (pg_rewind copies the source's files over).
pg_node_conf() {
    printf '\n# --- this node of the pair (scripts/db/pair.sh) ---\n'
    printf 'port = %s\n' "$(port_of "$1")"
    printf "unix_socket_directories = '%s'\n" "$DIR/$1"
}

# pg_follow NODE PRIMARY: NODE's (stopped) data directory becomes a standby
# of PRIMARY: standby.signal, and a postgresql.auto.conf naming PRIMARY and
# without any synchronous_standby_names of its own.
pg_follow() {
    local auto=$DIR/$1/data/postgresql.auto.conf
    grep -Ev '^[[:space:]]*(primary_conninfo|primary_slot_name|synchronous_standby_names)[[:space:]]*=' \
        "$auto" >"$auto.new"
    printf "primary_conninfo = 'host=%s port=%s user=postgres application_name=pair_%s'\n" \
        "$DIR/$2" "$(port_of "$2")" "$1" >>"$auto.new"
    mv "$auto.new" "$auto" && chown postgres: "$auto" || return 1
    touch "$DIR/$1/data/standby.signal" && chown postgres: "$DIR/$1/data/standby.signal"
}

cmd_start_pg() {
    local primary_port=$1 standby_port=$2 pw_sql
    [ "$primary_port" != "$standby_port" ] || die "the two ports must differ"
    _sqlreg_find_pg || _sqlreg_ensure_pg || die "no PostgreSQL binaries"
    new_dir
    printf 'pg\n' >"$DIR/kind"
    printf 'a\n' >"$DIR/primary"
    printf 'b\n' >"$DIR/standby"
    pg_node_init a "$primary_port" && pg_node_init b "$standby_port" || die "cannot set up $DIR"

    if ! (cd / && runuser -u postgres -- "$_SQLREG_PG_BIN/initdb" -D "$DIR/a/data" \
            --username=postgres --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C --no-sync) >"$DIR/a/initdb.log" 2>&1; then
        _sqlreg_tail_logs "$DIR/a/initdb.log"
        die "initdb failed"
    fi
    {
        cat <<'EOF'

# --- sqlreg failover pair (scripts/db/pair.sh) ---
listen_addresses = '127.0.0.1'
max_connections = 100
shared_buffers = 16MB
fsync = off
password_encryption = 'scram-sha-256'
wal_level = replica
max_wal_senders = 5
wal_keep_size = '256MB'
wal_log_hints = on
full_page_writes = on
hot_standby = on
wal_receiver_status_interval = 1s
EOF
        pg_node_conf a
    } >>"$DIR/a/data/postgresql.conf"
    cat >"$DIR/a/data/pg_hba.conf" <<'EOF'
# TYPE  DATABASE     USER      ADDRESS        METHOD
local   all          postgres                 trust
local   replication  postgres                 trust
local   all          all                      scram-sha-256
host    all          all       127.0.0.1/32   scram-sha-256
EOF
    "$DIR/a.ctl" start || die "the primary did not start"

    pw_sql=${SQLREG_DB_PASSWORD//\'/\'\'}
    if ! psql_at a "CREATE ROLE $SQLREG_DB_USER LOGIN CREATEDB PASSWORD '$pw_sql';
GRANT pg_signal_backend, pg_read_all_stats, pg_checkpoint TO $SQLREG_DB_USER;
GRANT EXECUTE ON FUNCTION pg_wal_replay_pause() TO $SQLREG_DB_USER;
GRANT EXECUTE ON FUNCTION pg_wal_replay_resume() TO $SQLREG_DB_USER;" >"$DIR/a/setup.log" 2>&1 ||
        ! psql_at a "CREATE DATABASE $SQLREG_DB_NAME OWNER $SQLREG_DB_USER" >>"$DIR/a/setup.log" 2>&1; then
        _sqlreg_tail_logs "$DIR/a/setup.log" "$DIR/a/postgresql.log"
        die "creating the role/database on the primary failed"
    fi

    # Cloned while synchronous_standby_names is empty (see the header).
    if ! (cd / && runuser -u postgres -- "$_SQLREG_PG_BIN/pg_basebackup" -h "$DIR/a" \
            -p "$primary_port" -U postgres -D "$DIR/b/data" -R -X stream -c fast --no-sync) \
            >"$DIR/b/basebackup.log" 2>&1; then
        _sqlreg_tail_logs "$DIR/b/basebackup.log"
        die "pg_basebackup of the standby failed"
    fi
    pg_node_conf b >>"$DIR/b/data/postgresql.conf"
    pg_follow b a || die "cannot configure the standby"
    "$DIR/b.ctl" start || die "the standby did not start"
    wait_for "the standby to stream" streaming_to a b || {
        _sqlreg_tail_logs "$DIR/b/postgresql.log"
        exit 1
    }
}

cmd_pg_sync() {
    local primary standby
    need_kind pg
    primary=$(role primary)
    standby=$(role standby)
    case ${1:-} in
        on)
            psql_at "$primary" "ALTER SYSTEM SET synchronous_standby_names = 'pair_$standby'" >/dev/null &&
                psql_at "$primary" "SELECT pg_reload_conf()" >/dev/null || die "cannot switch to synchronous"
            wait_for "pg_stat_replication to show pair_$standby as sync" query_is "$primary" \
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pair_$standby' \
                AND sync_state = 'sync'" 1 || exit 1
            ;;
        off)
            psql_at "$primary" "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null &&
                psql_at "$primary" "SELECT pg_reload_conf()" >/dev/null || die "cannot switch to asynchronous"
            wait_for "the primary to drop synchronous_standby_names" query_is "$primary" \
                "SHOW synchronous_standby_names" "" || exit 1
            ;;
        *) usage ;;
    esac
}

# The standby (either kind) stopped cleanly, or started again: a replica
# going away and coming back, roles unchanged.
cmd_standby() {
    case $1 in
        stop | start) "$DIR/$(role standby).ctl" "$1" || die "the standby would not $1" ;;
        *) usage ;;
    esac
}

cmd_pg_stop_primary() {
    need_kind pg
    "$DIR/$(role primary).ctl" kill || die "the primary would not stop"
}

cmd_pg_promote() {
    local old new
    need_kind pg
    old=$(role primary)
    new=$(role standby)
    # Never inherited (cloned before `pg-sync on`, followers get it filtered
    # out), but a promoted server waiting for a standby of its own would
    # block every commit: make sure.
    psql_at "$new" "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null || die "the standby is not running"
    if ! (cd / && runuser -u postgres -- "$_SQLREG_PG_BIN/pg_ctl" -D "$DIR/$new/data" -w \
            -t "$_SQLREG_TIMEOUT" promote) >"$DIR/$new/promote.log" 2>&1; then
        _sqlreg_tail_logs "$DIR/$new/promote.log" "$DIR/$new/postgresql.log"
        die "pg_ctl promote failed"
    fi
    wait_for "the promoted server to accept writes" query_is "$new" "SELECT pg_is_in_recovery()" f ||
        exit 1
    # The control file (pg_control_checkpoint(), and pg_rewind's view of the
    # source) shows the new timeline only after a checkpoint.
    psql_at "$new" "CHECKPOINT" >/dev/null || die "CHECKPOINT on the promoted server failed"
    printf '%s\n' "$new" >"$DIR/primary"
    printf '%s\n' "$old" >"$DIR/standby"
}

cmd_pg_rewind() {
    local target source
    need_kind pg
    target=$(role standby)
    source=$(role primary)
    "$DIR/$target.ctl" stop || die "the old primary would not stop"
    cp -p "$DIR/$target/data/postgresql.conf" "$DIR/$target/postgresql.conf.own"
    cp -p "$DIR/$target/data/postgresql.auto.conf" "$DIR/$target/postgresql.auto.conf.own"
    # A crashed target is first recovered by pg_rewind itself (single-user).
    if ! (cd / && runuser -u postgres -- "$_SQLREG_PG_BIN/pg_rewind" -D "$DIR/$target/data" \
            --source-server="host=$DIR/$source port=$(port_of "$source") user=postgres dbname=postgres" \
            --no-sync) >"$DIR/$target/rewind.log" 2>&1; then
        _sqlreg_tail_logs "$DIR/$target/rewind.log"
        die "pg_rewind failed"
    fi
    # pg_rewind copied the source's configuration files: take back our own.
    mv "$DIR/$target/postgresql.conf.own" "$DIR/$target/data/postgresql.conf"
    mv "$DIR/$target/postgresql.auto.conf.own" "$DIR/$target/data/postgresql.auto.conf"
    pg_follow "$target" "$source" || die "cannot configure the rewound server as a standby"
    "$DIR/$target.ctl" start || die "the rewound server did not start"
    wait_for "the rewound server to stream from the new primary" streaming_to "$source" "$target" || {
        _sqlreg_tail_logs "$DIR/$target/postgresql.log"
        exit 1
    }
}

cmd_pg_split_brain() {
    local rogue auto
    need_kind pg
    rogue=$(role standby)
    auto=$DIR/$rogue/data/postgresql.auto.conf
    "$DIR/$rogue.ctl" status && die "the old primary is running; stop it first (pg-stop-primary)"
    [ ! -e "$DIR/$rogue/data/standby.signal" ] || die "$rogue is a standby, not an old primary"
    # Without a standby of its own, a synchronous old primary would block
    # every commit instead of accepting writes beside the new one.
    grep -Ev '^[[:space:]]*synchronous_standby_names[[:space:]]*=' "$auto" >"$auto.new"
    mv "$auto.new" "$auto" && chown postgres: "$auto" || die "cannot edit $auto"
    "$DIR/$rogue.ctl" start || die "the old primary did not start"
    wait_for "the old primary to accept writes" query_is "$rogue" "SELECT pg_is_in_recovery()" f || exit 1
}

# --- MariaDB ------------------------------------------------------------

mariadb_root() {
    env -u MYSQL_PWD -u MYSQL_HOST -u MYSQL_TCP_PORT -u MYSQL_UNIX_PORT \
        mariadb --no-defaults --socket="$DIR/$1/mariadb.sock" --user=root --connect-timeout=5 \
        --batch --skip-column-names "${@:2}"
}

mariadb_node_init() {
    local node=$1 port=$2 id=$3 dir=$DIR/$1
    printf '%s\n' "$port" >"$DIR/$node.port"
    mkdir -p "$dir/data" "$dir/tmp" && chown -R mysql: "$dir" && chmod 755 "$dir" || return 1
    _sqlreg_write_mariadb_helper "$DIR/$node.ctl" "$dir" "$port" "--server-id=$id" \
        "--log-bin=$dir/binlog" --binlog-format=ROW --log-slave-updates \
        --log-bin-trust-function-creators=1 --innodb-buffer-pool-size=16M --innodb-log-file-size=8M \
        "${@:4}" || return 1
    # A private tmpdir: bootstraps running side by side must not share
    # temporary table files in /tmp.
    (cd / && TMPDIR=$dir/tmp mariadb-install-db --no-defaults --datadir="$dir/data" --user=mysql \
        --tmpdir="$dir/tmp" --innodb-log-file-size=8M \
        --auth-root-authentication-method=socket --auth-root-socket-user=root \
        --skip-test-db --skip-name-resolve) >"$dir/install-db.log" 2>&1 || {
        _sqlreg_tail_logs "$dir/install-db.log"
        return 1
    }
}

cmd_start_mariadb() {
    local primary_port=$1 replica_port=$2 a_pid b_pid
    [ "$primary_port" != "$replica_port" ] || die "the two ports must differ"
    _sqlreg_ensure_mariadb || die "no MariaDB"
    new_dir
    printf 'mariadb\n' >"$DIR/kind"
    printf 'a\n' >"$DIR/primary"
    printf 'b\n' >"$DIR/standby"
    mariadb_node_init a "$primary_port" 1 &
    a_pid=$!
    mariadb_node_init b "$replica_port" 2 --read-only &
    b_pid=$!
    wait "$a_pid" || die "setting up the primary failed"
    wait "$b_pid" || die "setting up the replica failed"
    "$DIR/a.ctl" start || die "the primary did not start"
    "$DIR/b.ctl" start || die "the replica did not start"

    if ! _sqlreg_mariadb_setup_sql | mariadb_root a >"$DIR/a/setup.log" 2>&1
    then
        _sqlreg_tail_logs "$DIR/a/setup.log" "$DIR/a/mariadb.err"
        die "creating the user/database on the primary failed"
    fi
    if ! _sqlreg_mariadb_follow_sql "$primary_port" | mariadb_root b >"$DIR/b/setup.log" 2>&1; then
        _sqlreg_tail_logs "$DIR/b/setup.log" "$DIR/b/mariadb.err"
        die "starting replication on the replica failed"
    fi
    wait_for "the replica to catch up" mariadb_has_db b || {
        _sqlreg_tail_logs "$DIR/b/mariadb.err"
        exit 1
    }
}

mariadb_has_db() {
    [ "$(mariadb_root "$1" -e "SELECT COUNT(*) FROM information_schema.schemata \
        WHERE schema_name = '$SQLREG_DB_NAME'" 2>/dev/null)" = 1 ]
}

cmd_mariadb_stop_primary() {
    need_kind mariadb
    "$DIR/$(role primary).ctl" kill || die "the primary would not stop"
}

cmd_mariadb_promote() {
    local old new received
    need_kind mariadb
    old=$(role primary)
    new=$(role standby)
    # Apply everything already received before dropping the relay log.
    mariadb_root "$new" -e "STOP SLAVE IO_THREAD" || die "the replica is not running"
    received=$(mariadb_root "$new" -e "SHOW SLAVE STATUS\G" | sed -n 's/^ *Gtid_IO_Pos: //p')
    if [ -n "$received" ] &&
        [ "$(mariadb_root "$new" -e "SELECT MASTER_GTID_WAIT('$received', $_SQLREG_TIMEOUT)")" != 0 ]; then
        die "the replica did not apply what it received ($received) within ${_SQLREG_TIMEOUT}s"
    fi
    mariadb_root "$new" -e "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0" ||
        die "promoting the replica failed"
    printf '%s\n' "$new" >"$DIR/primary"
    printf '%s\n' "$old" >"$DIR/standby"
}

# --- both ---------------------------------------------------------------

cmd_pg_poolers() {
    local node port
    need_kind pg
    [ "$1" != "$2" ] || die "the two ports must differ"
    _sqlreg_ensure_pgbouncer || die "no pgbouncer"
    _SQLREG_PG_PSQL=$_SQLREG_PG_BIN/psql
    # _sqlreg_start_pgbouncer keeps its files under $_SQLREG_DB_DIR.
    _SQLREG_DB_DIR=$DIR
    for node in a b; do
        port=$1
        shift
        # The server log shown if a login through the pooler fails.
        _SQLREG_PG_LOG=$DIR/$node/postgresql.log
        _sqlreg_start_pgbouncer "$node" "$port" transaction 4 "$(port_of "$node")" ||
            die "PgBouncer in front of $node did not start"
        printf '%s\n' "$port" >"$DIR/pgbouncer-$node.port"
    done
}

cmd_stop() {
    local node rc=0
    [ -d "$DIR" ] || return 0
    [ -f "$DIR/kind" ] || die "$DIR holds no pair; not touching it"
    for node in b a; do
        if [ -x "$DIR/pgbouncer-$node-ctl" ]; then
            "$DIR/pgbouncer-$node-ctl" kill || rc=1
        fi
    done
    for node in b a; do
        if [ -x "$DIR/$node.ctl" ]; then
            "$DIR/$node.ctl" kill || rc=1
        fi
    done
    if [ "$rc" -ne 0 ]; then
        die "a server would not stop; leaving $DIR in place"
    fi
    rm -rf -- "$DIR"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (servers run as the postgres/mysql users via runuser)"
[ $# -ge 2 ] || usage
COMMAND=$1
DIR=$(realpath -m -- "$2")
shift 2
case $COMMAND in
    start-pg) [ $# -eq 2 ] || usage; cmd_start_pg "$@" ;;
    pg-sync) [ $# -eq 1 ] || usage; cmd_pg_sync "$@" ;;
    pg-stop-primary) cmd_pg_stop_primary ;;
    pg-promote) cmd_pg_promote ;;
    pg-rewind) cmd_pg_rewind ;;
    pg-split-brain) cmd_pg_split_brain ;;
    pg-poolers) [ $# -eq 2 ] || usage; cmd_pg_poolers "$@" ;;
    start-mariadb) [ $# -eq 2 ] || usage; cmd_start_mariadb "$@" ;;
    mariadb-stop-primary) cmd_mariadb_stop_primary ;;
    mariadb-promote) cmd_mariadb_promote ;;
    standby) [ $# -eq 1 ] || usage; cmd_standby "$@" ;;
    stop) cmd_stop ;;
    *) usage ;;
esac
