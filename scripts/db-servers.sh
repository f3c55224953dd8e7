# shellcheck shell=bash
#
# Throwaway PostgreSQL and MariaDB servers for sqlreg's tests and benchmarks.
#
# This file is meant to be *sourced*, not executed:
#
#     source scripts/db-servers.sh
#     sqlreg_db_stop_on_exit   # stop them however the script ends
#     sqlreg_db_start          # both servers up, SQLREG_TEST_* exported
#     cargo test ...
#     sqlreg_db_stop           # safe to call twice, or after a failed start
#
# sqlreg_db_start
#   * installs MariaDB from Debian's packages (mariadb-server, mariadb-client)
#     if it is missing, PostgreSQL (package postgresql) if no initdb can
#     be found, PgBouncer (package pgbouncer) if no pgbouncer can be
#     found, and openssl (package openssl) if it is missing; the packaged
#     services are never started;
#   * creates a fresh directory /tmp/sqlreg-db.XXXXXX holding both data
#     directories, sockets, pid files and logs;
#   * starts PostgreSQL (initdb + pg_ctl, run as the `postgres` user) and
#     MariaDB (mariadbd --user=mysql), both listening on 127.0.0.1 only;
#   * creates user `sqlreg` (password below) and database `sqlreg_test` on
#     both, then checks a password login over TCP on each;
#   * starts a replica of each: a PostgreSQL hot standby cloned with
#     `pg_basebackup -R` and streaming (asynchronously; a test may switch the
#     primary to synchronous with synchronous_standby_names =
#     'sqlreg_standby'), and a read-only MariaDB replica replicating with
#     GTIDs; both on their own loopback ports (scripts/db/*.sh hold each
#     server's part);
#   * makes a CA, a server certificate (localhost, 127.0.0.1) and a client
#     certificate with `openssl`, and starts a PostgreSQL and a MariaDB
#     server of their own with TLS on, each with the test user and database
#     and a user that logs in with the client certificate alone
#     (scripts/db/tls.sh); every other server has no TLS;
#   * starts two PgBouncers (run as the `postgres` user) in front of the
#     PostgreSQL primary, each mapping every database of the primary under
#     its own name (`*` fallback), with auth_type scram-sha-256 for the test
#     user, admin_users = sqlreg (SHOW POOLS etc. on database `pgbouncer`)
#     and ignore_startup_parameters = extra_float_digits only, so a client
#     sending the `options` startup parameter is refused ("unsupported
#     startup parameter: options"): one in transaction mode
#     (default_pool_size = 4, so clients share server connections), one in
#     session mode (default_pool_size = 20, server_reset_query = DISCARD
#     ALL); both max_client_conn = 500, no unix socket; and a third in
#     transaction mode in front of the standby (default_pool_size = 4), for
#     replicas and multi-host URLs behind a pooler per host;
#   * starts a Patroni cluster beside them (scripts/db/patroni.sh; installs
#     Debian's patroni, etcd-server and haproxy if missing): one etcd member,
#     three PostgreSQL nodes pg1, pg2, pg3 under Patroni (synchronous_mode,
#     ttl 10 s, loop_wait 2 s) and HAProxy with a primary and a replica port
#     checked against Patroni's /primary and /replica endpoints
#     (on-marked-down shutdown-sessions). It bootstraps in the background
#     while the other servers start; sqlreg_db_start returns once it has a
#     leader, a synchronous standby and a third node streaming, with the
#     same test user and database as the other servers.
#
# Environment read (all optional):
#   SQLREG_PG_PORT           PostgreSQL port          (default 55432)
#   SQLREG_MARIADB_PORT      MariaDB port             (default 53306)
#   SQLREG_PG_STANDBY_PORT   PostgreSQL standby port  (default PostgreSQL port + 1)
#   SQLREG_MARIADB_REPLICA_PORT  MariaDB replica port (default MariaDB port + 1)
#   SQLREG_PGBOUNCER_PORT    PgBouncer, transaction mode (default PostgreSQL port + 2)
#   SQLREG_PGBOUNCER_SESSION_PORT  PgBouncer, session mode (default PostgreSQL port + 3)
#   SQLREG_PGBOUNCER_STANDBY_PORT  PgBouncer, transaction mode, in front of the standby
#                            (default PostgreSQL port + 4)
#   SQLREG_PG_TLS_PORT       PostgreSQL with TLS      (default PostgreSQL port + 5)
#   SQLREG_MARIADB_TLS_PORT  MariaDB with TLS         (default MariaDB port + 2)
#   SQLREG_DB_TMPDIR         parent of the temp dir   (default /tmp; the
#                            `postgres` and `mysql` users must be able to
#                            traverse it, and socket paths must stay short)
#   SQLREG_DB_START_TIMEOUT  seconds to wait for each server (default 60)
#   SQLREG_PATRONI           on (default) or off: whether to start the Patroni cluster
#   SQLREG_PATRONI_PORT      its first port B (default 51500): etcd B and B+1, HAProxy
#                            B+2 (primary) and B+3 (replicas), PostgreSQL B+10..B+12,
#                            Patroni's REST API B+20..B+22
#   SQLREG_PATRONI_TIMEOUT   seconds to wait for the cluster to be healthy (default 120)
#
# Environment exported by sqlreg_db_start:
#   SQLREG_TEST_HOST             127.0.0.1
#   SQLREG_TEST_PG_PORT          PostgreSQL TCP port
#   SQLREG_TEST_MARIADB_PORT     MariaDB TCP port
#   SQLREG_TEST_PGBOUNCER_PORT   PgBouncer in transaction mode (in front of SQLREG_TEST_PG_PORT)
#   SQLREG_TEST_PGBOUNCER_SESSION_PORT  PgBouncer in session mode (the same server)
#   SQLREG_TEST_PGBOUNCER_STANDBY_PORT  PgBouncer in transaction mode in front of SQLREG_TEST_PG_STANDBY_PORT
#   SQLREG_TEST_USER             sqlreg
#   SQLREG_TEST_PASSWORD         the password (contains @ : / # %)
#   SQLREG_TEST_DATABASE         sqlreg_test
#   SQLREG_TEST_PG_URL           postgres://sqlreg:<pct-encoded pw>@127.0.0.1:PORT/sqlreg_test
#   SQLREG_TEST_MARIADB_URL      mysql://sqlreg:<pct-encoded pw>@127.0.0.1:PORT/sqlreg_test
#   SQLREG_TEST_DB_DIR           the temp dir holding everything below
#   SQLREG_TEST_PG_BIN           directory of initdb/pg_ctl/postgres
#   SQLREG_TEST_PG_DATA          PostgreSQL data dir
#   SQLREG_TEST_PG_PIDFILE       "$SQLREG_TEST_PG_DATA/postmaster.pid" (first line: postmaster pid)
#   SQLREG_TEST_PG_SOCKET_DIR    PostgreSQL unix socket directory
#   SQLREG_TEST_PG_LOG           PostgreSQL server log
#   SQLREG_TEST_PG_RESTART       helper script: `"$SQLREG_TEST_PG_RESTART" [restart|stop|start|kill|status]`
#   SQLREG_TEST_MARIADB_PIDFILE  MariaDB pid file
#   SQLREG_TEST_MARIADB_SOCKET   MariaDB unix socket
#   SQLREG_TEST_MARIADB_LOG      MariaDB error log
#   SQLREG_TEST_MARIADB_RESTART  helper script: `"$SQLREG_TEST_MARIADB_RESTART" [restart|stop|start|kill|status]`
#   SQLREG_TEST_PG_STANDBY_PORT, _DATA, _LOG, _RESTART    the same for the PostgreSQL standby
#   SQLREG_TEST_MARIADB_REPLICA_PORT, _SOCKET, _RESTART   the same for the MariaDB replica
#   SQLREG_TEST_PG_TLS_PORT      the PostgreSQL server with TLS (scripts/db/tls.sh)
#   SQLREG_TEST_MARIADB_TLS_PORT the MariaDB server with TLS
#   SQLREG_TEST_TLS_DIR          the certificates; in it:
#   SQLREG_TEST_TLS_CA           the CA that signed the servers' and the client certificate
#   SQLREG_TEST_TLS_OTHER_CA     a CA that signed none of them
#   SQLREG_TEST_TLS_SERVER_CERT  the TLS servers' certificate (DNS:localhost, IP:127.0.0.1)
#   SQLREG_TEST_TLS_CLIENT_CERT, SQLREG_TEST_TLS_CLIENT_KEY   the client certificate and key
#   SQLREG_TEST_TLS_CERT_USER    sqlreg_cert: logs in over TLS with the client certificate, no password
#   SQLREG_TEST_PATRONI_CTL      the Patroni cluster's helper (`"$SQLREG_TEST_PATRONI_CTL"` alone
#                                prints its commands: members, leader, kill-postmaster NODE,
#                                kill-node NODE, start-node NODE, switchover NODE, wait, ...)
#   SQLREG_TEST_PATRONI_DIR      its files (etcd/, haproxy/, pg1/ … pg3/: patroni.yml,
#                                patroni.log, data/, log/postgresql.log)
#   SQLREG_TEST_PATRONI_NODES    pg1,pg2,pg3
#   SQLREG_TEST_PATRONI_PORTS    their PostgreSQL ports, in the same order
#   SQLREG_TEST_PATRONI_HAPROXY_PORT          HAProxy's port to the leader
#   SQLREG_TEST_PATRONI_HAPROXY_REPLICA_PORT  HAProxy's port to the replicas (round robin)
#   SQLREG_TEST_PATRONI_ETCD_PORT             etcd's client port
#   (all unset with SQLREG_PATRONI=off)
#
# The two helper scripts act on exactly this run's servers (same flags, same
# directories); with no argument they restart the server and return once it
# accepts connections again. `stop` is a clean shutdown, `kill` a crash
# (SIGKILL for mariadbd, `pg_ctl stop -m immediate` for PostgreSQL), `start`
# starts it again and waits until it is ready, `status` exits 0 iff running.
# Both need root (they switch to the `postgres`/`mysql` users themselves).
# A restart of PostgreSQL can also be done by hand with
#     runuser -u postgres -- pg_ctl -D "$SQLREG_TEST_PG_DATA" -l "$SQLREG_TEST_PG_LOG" restart -m fast
# Keep the `-l`: without it the new postmaster inherits the caller's stdout and
# stderr, so a caller that captures them (Command::output(), $(...)) waits for
# EOF until the server is stopped, i.e. hangs. The helper scripts are immune.
#
# The PgBouncers' files (pgbouncer.ini, userlist.txt, pgbouncer.log,
# pgbouncer.pid) are in $SQLREG_TEST_DB_DIR/pgbouncer-tx,
# $SQLREG_TEST_DB_DIR/pgbouncer-session and
# $SQLREG_TEST_DB_DIR/pgbouncer-standby-tx; each has a helper of the same
# kind (same commands; `stop` is SIGTERM, pgbouncer's immediate shutdown,
# `kill` SIGKILL): $SQLREG_TEST_DB_DIR/pgbouncer-tx-ctl,
# $SQLREG_TEST_DB_DIR/pgbouncer-session-ctl and
# $SQLREG_TEST_DB_DIR/pgbouncer-standby-tx-ctl.
#
# Destructive failover tests start primary/standby pairs of their own under
# $SQLREG_TEST_DB_DIR/pairs with scripts/db/pair.sh; sqlreg_db_stop stops any
# pair a dead test process left behind.
#
# Servers (and PgBouncers) are only ever stopped through their own pid file /
# pg_ctl, never by process name.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "scripts/db-servers.sh is meant to be sourced: source scripts/db-servers.sh; sqlreg_db_start" >&2
    exit 2
fi

SQLREG_DB_USER=sqlreg
SQLREG_DB_PASSWORD='Pw-s3cr3t@sqlreg:/#%'
SQLREG_DB_NAME=sqlreg_test

_SQLREG_SCRIPTS_DB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/db"
# shellcheck source=scripts/db/common.sh
source "$_SQLREG_SCRIPTS_DB/common.sh"
# shellcheck source=scripts/db/postgres.sh
source "$_SQLREG_SCRIPTS_DB/postgres.sh"
# shellcheck source=scripts/db/mariadb.sh
source "$_SQLREG_SCRIPTS_DB/mariadb.sh"
# shellcheck source=scripts/db/pgbouncer.sh
source "$_SQLREG_SCRIPTS_DB/pgbouncer.sh"
# shellcheck source=scripts/db/tls.sh
source "$_SQLREG_SCRIPTS_DB/tls.sh"
# shellcheck source=scripts/db/galera.sh
source "$_SQLREG_SCRIPTS_DB/galera.sh"
# shellcheck source=scripts/db/patroni.sh
source "$_SQLREG_SCRIPTS_DB/patroni.sh"

_sqlreg_unexport() {
    unset SQLREG_TEST_HOST SQLREG_TEST_PG_PORT SQLREG_TEST_MARIADB_PORT \
        SQLREG_TEST_PGBOUNCER_PORT SQLREG_TEST_PGBOUNCER_SESSION_PORT \
        SQLREG_TEST_PGBOUNCER_STANDBY_PORT \
        SQLREG_TEST_USER SQLREG_TEST_PASSWORD SQLREG_TEST_DATABASE \
        SQLREG_TEST_PG_URL SQLREG_TEST_MARIADB_URL SQLREG_TEST_DB_DIR \
        SQLREG_TEST_PG_BIN SQLREG_TEST_PG_DATA SQLREG_TEST_PG_PIDFILE SQLREG_TEST_PG_SOCKET_DIR \
        SQLREG_TEST_PG_LOG SQLREG_TEST_PG_RESTART SQLREG_TEST_MARIADB_PIDFILE \
        SQLREG_TEST_MARIADB_SOCKET SQLREG_TEST_MARIADB_LOG SQLREG_TEST_MARIADB_RESTART \
        SQLREG_TEST_PG_STANDBY_PORT SQLREG_TEST_PG_STANDBY_DATA SQLREG_TEST_PG_STANDBY_LOG \
        SQLREG_TEST_PG_STANDBY_RESTART SQLREG_TEST_MARIADB_REPLICA_PORT \
        SQLREG_TEST_MARIADB_REPLICA_SOCKET SQLREG_TEST_MARIADB_REPLICA_RESTART \
        SQLREG_TEST_TLS_DIR SQLREG_TEST_TLS_CA SQLREG_TEST_TLS_OTHER_CA \
        SQLREG_TEST_TLS_SERVER_CERT SQLREG_TEST_TLS_CLIENT_CERT SQLREG_TEST_TLS_CLIENT_KEY \
        SQLREG_TEST_TLS_CERT_USER SQLREG_TEST_PG_TLS_PORT SQLREG_TEST_MARIADB_TLS_PORT
    _sqlreg_unexport_galera \
SQLREG_TEST_PATRONI_CTL SQLREG_TEST_PATRONI_DIR SQLREG_TEST_PATRONI_NODES \
        SQLREG_TEST_PATRONI_PORTS SQLREG_TEST_PATRONI_HAPROXY_PORT \
        SQLREG_TEST_PATRONI_HAPROXY_REPLICA_PORT SQLREG_TEST_PATRONI_ETCD_PORT
}

sqlreg_db_start() {
    local t0=$SECONDS pw_url pg_version mariadb_version
    if [ -n "${_SQLREG_DB_DIR:-}" ]; then
        _sqlreg_log "servers already started in $_SQLREG_DB_DIR (call sqlreg_db_stop first)"
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        _sqlreg_log "must run as root (servers run as the postgres/mysql users via runuser)"
        return 1
    fi
    _SQLREG_PG_PORT=${SQLREG_PG_PORT:-55432}
    _SQLREG_MARIADB_PORT=${SQLREG_MARIADB_PORT:-53306}
    _SQLREG_PG_STANDBY_PORT=${SQLREG_PG_STANDBY_PORT:-$((_SQLREG_PG_PORT + 1))}
    _SQLREG_MARIADB_REPLICA_PORT=${SQLREG_MARIADB_REPLICA_PORT:-$((_SQLREG_MARIADB_PORT + 1))}
    _SQLREG_PGBOUNCER_PORT=${SQLREG_PGBOUNCER_PORT:-$((_SQLREG_PG_PORT + 2))}
    _SQLREG_PGBOUNCER_SESSION_PORT=${SQLREG_PGBOUNCER_SESSION_PORT:-$((_SQLREG_PG_PORT + 3))}
    _SQLREG_PGBOUNCER_STANDBY_PORT=${SQLREG_PGBOUNCER_STANDBY_PORT:-$((_SQLREG_PG_PORT + 4))}
    _SQLREG_PG_TLS_PORT=${SQLREG_PG_TLS_PORT:-$((_SQLREG_PG_PORT + 5))}
    _SQLREG_MARIADB_TLS_PORT=${SQLREG_MARIADB_TLS_PORT:-$((_SQLREG_MARIADB_PORT + 2))}
    _SQLREG_GALERA_PORT=${SQLREG_GALERA_PORT:-$((_SQLREG_MARIADB_PORT + 10))}
    _SQLREG_GALERA=${SQLREG_GALERA:-on}
    _SQLREG_TIMEOUT=${SQLREG_DB_START_TIMEOUT:-60}
    _SQLREG_PATRONI_PORT=${SQLREG_PATRONI_PORT:-51500}
    local port ports all_ports galera_ports='' patroni_ports=()
    if [ "$_SQLREG_GALERA" != off ]; then
        galera_ports=$(seq "$_SQLREG_GALERA_PORT" $((_SQLREG_GALERA_PORT + 11)))
    fi
    case ${SQLREG_PATRONI:-on} in
        on) _SQLREG_PATRONI_ON=1 ;;
        off) _SQLREG_PATRONI_ON=0 ;;
        *) _sqlreg_log "SQLREG_PATRONI must be on or off"; return 1 ;;
    esac
    if [ "$_SQLREG_PATRONI_ON" = 1 ]; then
        for port in 0 1 2 3 10 11 12 20 21 22; do
            patroni_ports+=("$((_SQLREG_PATRONI_PORT + port))")
        done
    fi
    all_ports=$(printf '%s\n' "$_SQLREG_PG_PORT" "$_SQLREG_MARIADB_PORT" "$_SQLREG_PG_STANDBY_PORT" \
        "$_SQLREG_MARIADB_REPLICA_PORT" "$_SQLREG_PGBOUNCER_PORT" "$_SQLREG_PGBOUNCER_SESSION_PORT" \
        "$_SQLREG_PGBOUNCER_STANDBY_PORT" "$_SQLREG_PG_TLS_PORT" "$_SQLREG_MARIADB_TLS_PORT" \
        $galera_ports "${patroni_ports[@]}")
    if [ "$(sort -u <<<"$all_ports" | wc -l)" -ne "$(wc -l <<<"$all_ports")" ]; then
        _sqlreg_log "the server ports must differ (SQLREG_PG_PORT, SQLREG_MARIADB_PORT," \
            "SQLREG_PG_STANDBY_PORT, SQLREG_MARIADB_REPLICA_PORT, SQLREG_PGBOUNCER_PORT," \
            "SQLREG_PGBOUNCER_SESSION_PORT, SQLREG_PGBOUNCER_STANDBY_PORT, SQLREG_PG_TLS_PORT," \
            "SQLREG_MARIADB_TLS_PORT, the twelve from SQLREG_GALERA_PORT and the ten from" \
            "SQLREG_PATRONI_PORT)"
        return 1
    fi
    for port in $all_ports; do
        if _sqlreg_port_busy "$port"; then
            _sqlreg_log "port 127.0.0.1:$port is already in use (a leftover server?" \
                "set SQLREG_PG_PORT / SQLREG_MARIADB_PORT / SQLREG_PATRONI_PORT to use other ports)"
            return 1
        fi
    done

    _sqlreg_ensure_pg || return 1
    _sqlreg_ensure_mariadb || return 1
    _sqlreg_ensure_pgbouncer || return 1
    _sqlreg_ensure_openssl || return 1
    if [ "$_SQLREG_GALERA" != off ]; then
        _sqlreg_ensure_galera || return 1
    fi
    if [ "$_SQLREG_PATRONI_ON" = 1 ]; then
        _sqlreg_ensure_patroni || return 1
    fi
    _SQLREG_PG_PSQL=$_SQLREG_PG_BIN/psql
    [ -x "$_SQLREG_PG_PSQL" ] || _SQLREG_PG_PSQL=psql

    _SQLREG_DB_DIR=$(mktemp -d "${SQLREG_DB_TMPDIR:-/tmp}/sqlreg-db.XXXXXX") || {
        _SQLREG_DB_DIR=
        return 1
    }
    chmod 755 "$_SQLREG_DB_DIR"
    # shellcheck disable=SC2086 # one port per word
    _sqlreg_reserve_ports "$_SQLREG_DB_DIR" $all_ports

    if ! _sqlreg_make_tls; then
        _sqlreg_log "making the TLS certificates failed; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_pg; then
        _sqlreg_log "PostgreSQL failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    # Patroni bootstraps its cluster in the background while the other
    # servers start; waited for at the end.
    if [ "$_SQLREG_PATRONI_ON" = 1 ] && ! _sqlreg_start_patroni; then
        _sqlreg_log "the Patroni cluster failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_mariadb; then
        _sqlreg_log "MariaDB failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_pg_standby; then
        _sqlreg_log "the PostgreSQL standby failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_mariadb_replica; then
        _sqlreg_log "the MariaDB replica failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_pgbouncer tx "$_SQLREG_PGBOUNCER_PORT" transaction 4; then
        _sqlreg_log "PgBouncer (transaction mode) failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_pgbouncer session "$_SQLREG_PGBOUNCER_SESSION_PORT" session 20; then
        _sqlreg_log "PgBouncer (session mode) failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_pgbouncer standby-tx "$_SQLREG_PGBOUNCER_STANDBY_PORT" transaction 4 \
            "$_SQLREG_PG_STANDBY_PORT"; then
        _sqlreg_log "PgBouncer (transaction mode, in front of the standby) failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_tls_servers; then
        _sqlreg_log "the servers with TLS failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi

    if [ "$_SQLREG_GALERA" != off ] && ! _sqlreg_start_galera; then
        _sqlreg_log "the Galera cluster failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi

    if [ "$_SQLREG_PATRONI_ON" = 1 ]; then
        local patroni_t0=$SECONDS
        if ! _sqlreg_wait_patroni; then
            _sqlreg_log "the Patroni cluster did not become healthy; cleaning up"
            sqlreg_db_stop
            return 1
        fi
        _sqlreg_log "Patroni cluster healthy (waited $((SECONDS - patroni_t0))s after the other servers)"
        export SQLREG_TEST_PATRONI_CTL=$_SQLREG_DB_DIR/patroni-ctl
        export SQLREG_TEST_PATRONI_DIR=$_SQLREG_PATRONI_DIR
        export SQLREG_TEST_PATRONI_NODES=pg1,pg2,pg3
        export SQLREG_TEST_PATRONI_PORTS=$((_SQLREG_PATRONI_PORT + 10)),$((_SQLREG_PATRONI_PORT + 11)),$((_SQLREG_PATRONI_PORT + 12))
        export SQLREG_TEST_PATRONI_HAPROXY_PORT=$((_SQLREG_PATRONI_PORT + 2))
        export SQLREG_TEST_PATRONI_HAPROXY_REPLICA_PORT=$((_SQLREG_PATRONI_PORT + 3))
        export SQLREG_TEST_PATRONI_ETCD_PORT=$_SQLREG_PATRONI_PORT
    fi

    pw_url=$(_sqlreg_urlencode "$SQLREG_DB_PASSWORD")
    if [ "$_SQLREG_GALERA" != off ]; then
        _sqlreg_export_galera
    fi
    export SQLREG_TEST_HOST=127.0.0.1
    export SQLREG_TEST_PG_PORT=$_SQLREG_PG_PORT
    export SQLREG_TEST_MARIADB_PORT=$_SQLREG_MARIADB_PORT
    export SQLREG_TEST_PGBOUNCER_PORT=$_SQLREG_PGBOUNCER_PORT
    export SQLREG_TEST_PGBOUNCER_SESSION_PORT=$_SQLREG_PGBOUNCER_SESSION_PORT
    export SQLREG_TEST_PGBOUNCER_STANDBY_PORT=$_SQLREG_PGBOUNCER_STANDBY_PORT
    export SQLREG_TEST_USER=$SQLREG_DB_USER
    export SQLREG_TEST_PASSWORD=$SQLREG_DB_PASSWORD
    export SQLREG_TEST_DATABASE=$SQLREG_DB_NAME
    export SQLREG_TEST_PG_URL="postgres://$SQLREG_DB_USER:$pw_url@127.0.0.1:$_SQLREG_PG_PORT/$SQLREG_DB_NAME"
    export SQLREG_TEST_MARIADB_URL="mysql://$SQLREG_DB_USER:$pw_url@127.0.0.1:$_SQLREG_MARIADB_PORT/$SQLREG_DB_NAME"
    export SQLREG_TEST_DB_DIR=$_SQLREG_DB_DIR
    export SQLREG_TEST_PG_BIN=$_SQLREG_PG_BIN
    export SQLREG_TEST_PG_DATA=$_SQLREG_PG_DATA
    export SQLREG_TEST_PG_PIDFILE=$_SQLREG_PG_DATA/postmaster.pid
    export SQLREG_TEST_PG_SOCKET_DIR=$_SQLREG_PG_SOCKET_DIR
    export SQLREG_TEST_PG_LOG=$_SQLREG_PG_LOG
    export SQLREG_TEST_PG_RESTART=$_SQLREG_DB_DIR/pg-ctl
    export SQLREG_TEST_MARIADB_PIDFILE=$_SQLREG_MARIADB_PIDFILE
    export SQLREG_TEST_MARIADB_SOCKET=$_SQLREG_MARIADB_SOCKET
    export SQLREG_TEST_MARIADB_LOG=$_SQLREG_MARIADB_LOG
    export SQLREG_TEST_MARIADB_RESTART=$_SQLREG_DB_DIR/mariadb-ctl
    export SQLREG_TEST_PG_STANDBY_PORT=$_SQLREG_PG_STANDBY_PORT
    export SQLREG_TEST_PG_STANDBY_DATA=$_SQLREG_PG_STANDBY_DATA
    export SQLREG_TEST_PG_STANDBY_LOG=$_SQLREG_PG_STANDBY_LOG
    export SQLREG_TEST_PG_STANDBY_RESTART=$_SQLREG_DB_DIR/pg-standby-ctl
    export SQLREG_TEST_MARIADB_REPLICA_PORT=$_SQLREG_MARIADB_REPLICA_PORT
    export SQLREG_TEST_MARIADB_REPLICA_SOCKET=$_SQLREG_MARIADB_REPLICA_SOCKET
    export SQLREG_TEST_MARIADB_REPLICA_RESTART=$_SQLREG_DB_DIR/mariadb-replica-ctl
    export SQLREG_TEST_PG_TLS_PORT=$_SQLREG_PG_TLS_PORT
    export SQLREG_TEST_MARIADB_TLS_PORT=$_SQLREG_MARIADB_TLS_PORT
    export SQLREG_TEST_TLS_DIR=$_SQLREG_TLS_DIR
    export SQLREG_TEST_TLS_CA=$_SQLREG_TLS_DIR/ca.crt
    export SQLREG_TEST_TLS_OTHER_CA=$_SQLREG_TLS_DIR/other-ca.crt
    export SQLREG_TEST_TLS_SERVER_CERT=$_SQLREG_TLS_DIR/server.crt
    export SQLREG_TEST_TLS_CLIENT_CERT=$_SQLREG_TLS_DIR/client.crt
    export SQLREG_TEST_TLS_CLIENT_KEY=$_SQLREG_TLS_DIR/client.key
    export SQLREG_TEST_TLS_CERT_USER=$SQLREG_TLS_CERT_USER
    # Let `pg_ctl` be found by name even where only /usr/lib/postgresql/N/bin has it.
    if ! command -v pg_ctl >/dev/null 2>&1; then
        export PATH="$_SQLREG_PG_BIN:$PATH"
    fi

    pg_version=$("$_SQLREG_PG_BIN/postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //' || true)
    mariadb_version=$("$_SQLREG_MARIADBD" --version 2>/dev/null | sed -n 's/.*Ver \([^ ]*\).*/\1/p' || true)
    _sqlreg_log "up in $((SECONDS - t0))s: PostgreSQL ${pg_version:-?} on 127.0.0.1:$_SQLREG_PG_PORT," \
        "MariaDB ${mariadb_version:-?} on 127.0.0.1:$_SQLREG_MARIADB_PORT, their replicas on" \
        "$_SQLREG_PG_STANDBY_PORT and $_SQLREG_MARIADB_REPLICA_PORT, PgBouncer in transaction" \
        "mode on $_SQLREG_PGBOUNCER_PORT and in session mode on $_SQLREG_PGBOUNCER_SESSION_PORT," \
        "in transaction mode in front of the standby on $_SQLREG_PGBOUNCER_STANDBY_PORT," \
        "with TLS: PostgreSQL on $_SQLREG_PG_TLS_PORT and MariaDB on $_SQLREG_MARIADB_TLS_PORT" \
        "(files in $_SQLREG_DB_DIR)"
    if [ "$_SQLREG_GALERA" != off ]; then
        _sqlreg_log "Galera: three nodes on ${SQLREG_TEST_GALERA_PORTS}, Synced" \
            "${_SQLREG_GALERA_SECONDS}s after the first one started"
    fi
}

sqlreg_db_stop() {
    local dir=${_SQLREG_DB_DIR:-} rc=0
    [ -n "$dir" ] || return 0
    # The failover tests' own pairs (scripts/db/pair.sh), if a test process
    # died before it could stop its pair.
    local pair
    for pair in "$dir"/pairs/*/; do
        [ -f "$pair/kind" ] || continue
        bash "$_SQLREG_SCRIPTS_DB/pair.sh" stop "$pair" || rc=1
    done
    # The Patroni cluster: HAProxy, Patroni (which stops its PostgreSQL), etcd.
    if [ -x "$dir/patroni-ctl" ]; then
        "$dir/patroni-ctl" stop || rc=1
    fi
    # The PgBouncers before the PostgreSQL server behind them.
    local bouncer
    for bouncer in tx session standby-tx; do
        if [ -x "$dir/pgbouncer-$bouncer-ctl" ]; then
            "$dir/pgbouncer-$bouncer-ctl" stop || rc=1
        fi
    done
    # The Galera nodes, by their pid files.
    _sqlreg_stop_galera "$dir" || rc=1
    # Replicas first: a primary stopping under a streaming standby is fine,
    # but stopping them first keeps their logs free of reconnect noise.
    if [ -x "$dir/mariadb-replica-ctl" ]; then
        "$dir/mariadb-replica-ctl" stop || rc=1
    fi
    if [ -x "$dir/pg-standby-ctl" ]; then
        "$dir/pg-standby-ctl" stop || rc=1
    fi
    local tls_server
    for tls_server in mariadb-tls pg-tls; do
        if [ -x "$dir/$tls_server-ctl" ]; then
            "$dir/$tls_server-ctl" stop || rc=1
        fi
    done
    if [ -x "$dir/mariadb-ctl" ]; then
        "$dir/mariadb-ctl" stop || rc=1
    fi
    if [ -x "$dir/pg-ctl" ]; then
        "$dir/pg-ctl" stop || rc=1
    fi
    _sqlreg_release_ports "$dir" || rc=1
    if [ "$rc" -eq 0 ]; then
        case $dir in
            */sqlreg-db.*) rm -rf -- "$dir" ;;
        esac
    else
        _sqlreg_log "a server would not stop; leaving $dir in place"
    fi
    _SQLREG_DB_DIR=
    _sqlreg_unexport
    return "$rc"
}

# Stops the servers whenever the calling script ends (normally, on error, or
# on Ctrl-C / TERM), keeping the script's own exit code; a failed stop turns
# a success into a failure. Call it before sqlreg_db_start.
sqlreg_db_stop_on_exit() {
    trap _sqlreg_db_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

_sqlreg_db_exit() {
    local rc=$? stop_rc=0
    trap - EXIT INT TERM
    sqlreg_db_stop || stop_rc=$?
    if [ "$rc" -eq 0 ]; then
        rc=$stop_rc
    fi
    exit "$rc"
}
