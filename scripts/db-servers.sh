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
#     if it is missing, and PostgreSQL (package postgresql) if no initdb can
#     be found; the packaged services are never started;
#   * creates a fresh directory /tmp/sqlreg-db.XXXXXX holding both data
#     directories, sockets, pid files and logs;
#   * starts PostgreSQL (initdb + pg_ctl, run as the `postgres` user) and
#     MariaDB (mariadbd --user=mysql), both listening on 127.0.0.1 only;
#   * creates user `sqlreg` (password below) and database `sqlreg_test` on
#     both, then checks a password login over TCP on each.
#
# Environment read (all optional):
#   SQLREG_PG_PORT           PostgreSQL port          (default 55432)
#   SQLREG_MARIADB_PORT      MariaDB port             (default 53306)
#   SQLREG_DB_TMPDIR         parent of the temp dir   (default /tmp; the
#                            `postgres` and `mysql` users must be able to
#                            traverse it, and socket paths must stay short)
#   SQLREG_DB_START_TIMEOUT  seconds to wait for each server (default 60)
#
# Environment exported by sqlreg_db_start:
#   SQLREG_TEST_HOST             127.0.0.1
#   SQLREG_TEST_PG_PORT          PostgreSQL TCP port
#   SQLREG_TEST_MARIADB_PORT     MariaDB TCP port
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
# Servers are only ever stopped through their own pid file / pg_ctl, never by
# process name.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "scripts/db-servers.sh is meant to be sourced: source scripts/db-servers.sh; sqlreg_db_start" >&2
    exit 2
fi

SQLREG_DB_USER=sqlreg
SQLREG_DB_PASSWORD='Pw-s3cr3t@sqlreg:/#%'
SQLREG_DB_NAME=sqlreg_test

_sqlreg_log() {
    printf 'db-servers: %s\n' "$*" >&2
}

# Percent-encode a string for use in the userinfo part of a URL (ASCII only).
_sqlreg_urlencode() {
    local s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            [a-zA-Z0-9._~-]) out+=$c ;;
            *) printf -v c '%%%02X' "'$c"; out+=$c ;;
        esac
    done
    printf '%s' "$out"
}

# Exit status 0 iff something accepts TCP connections on 127.0.0.1:$1.
_sqlreg_port_busy() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Install Debian packages without letting their maintainer scripts start
# any service (a policy-rc.d that says no, only if there is none already).
_sqlreg_apt_install() {
    local rc=0 made_policy=0 log
    if [ "$(id -u)" -ne 0 ]; then
        _sqlreg_log "need root to install $*"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _sqlreg_log "apt-get not found: install $* by hand"
        return 1
    fi
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, written by sqlreg scripts/db-servers.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    log=$(mktemp /tmp/sqlreg-apt.XXXXXX.log)
    _sqlreg_log "installing $* (apt-get, log in $log)"
    {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
                --no-install-recommends "$@"
    } >"$log" 2>&1 || rc=$?
    if [ "$made_policy" -eq 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    if [ "$rc" -ne 0 ]; then
        _sqlreg_log "apt-get failed (exit $rc); last lines of $log:"
        tail -n 30 "$log" >&2
        return 1
    fi
    rm -f "$log"
}

# Make sure a system user exists (used for `postgres` if PostgreSQL's
# binaries are present without the package that creates it).
_sqlreg_ensure_user() {
    if ! id "$1" >/dev/null 2>&1; then
        _sqlreg_log "creating system user $1"
        useradd --system --user-group --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin "$1" || return 1
    fi
}

# Sets _SQLREG_PG_BIN to the directory holding initdb and pg_ctl.
_sqlreg_find_pg() {
    local p d
    p=$(command -v initdb 2>/dev/null || true)
    if [ -n "$p" ] && [ -x "$(dirname "$(readlink -f "$p")")/pg_ctl" ]; then
        _SQLREG_PG_BIN=$(dirname "$(readlink -f "$p")")
        return 0
    fi
    # Newest version first.
    while IFS= read -r d; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            _SQLREG_PG_BIN=$d
            return 0
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
    return 1
}

_sqlreg_ensure_pg() {
    if ! _sqlreg_find_pg; then
        _sqlreg_apt_install postgresql postgresql-client || return 1
        _sqlreg_find_pg || { _sqlreg_log "no initdb/pg_ctl found even after installing postgresql"; return 1; }
    fi
    _sqlreg_ensure_user postgres
}

_sqlreg_ensure_mariadb() {
    local need=0
    _SQLREG_MARIADBD=$(command -v mariadbd 2>/dev/null || true)
    [ -n "$_SQLREG_MARIADBD" ] || _SQLREG_MARIADBD=/usr/sbin/mariadbd
    [ -x "$_SQLREG_MARIADBD" ] || need=1
    command -v mariadb-install-db >/dev/null 2>&1 || need=1
    command -v mariadb-admin >/dev/null 2>&1 || need=1
    command -v mariadb >/dev/null 2>&1 || need=1
    if [ "$need" -eq 1 ]; then
        _sqlreg_apt_install mariadb-server mariadb-client || return 1
        _SQLREG_MARIADBD=$(command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd)
        if [ ! -x "$_SQLREG_MARIADBD" ]; then
            _sqlreg_log "mariadbd not found even after installing mariadb-server"
            return 1
        fi
    fi
    _sqlreg_ensure_user mysql
}

# Shared shell functions for the generated helper scripts.
_sqlreg_helper_common() {
    cat <<'EOF'
log() { printf '%s: %s\n' "$NAME" "$*" >&2; }

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ]
}

# wait_gone PID SECONDS: 0 once the process is gone, 1 on timeout.
wait_gone() {
    local end=$((SECONDS + $2))
    while alive "$1"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}

port_busy() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

show_log() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            log "last lines of $f:"
            tail -n 40 "$f" >&2
        fi
    done
}
EOF
}

# Writes the PostgreSQL control helper to $1.
_sqlreg_write_pg_helper() {
    {
        printf '#!/usr/bin/env bash\n'
        printf '# Generated by sqlreg scripts/db-servers.sh for one test run.\n'
        printf '# Usage: %s [restart|stop|start|kill|status]   (default: restart)\n' "$1"
        printf 'set -uo pipefail\n'
        printf 'NAME=pg-ctl\n'
        printf 'BIN=%q\n' "$_SQLREG_PG_BIN"
        printf 'DATA=%q\n' "$_SQLREG_PG_DATA"
        printf 'LOG=%q\n' "$_SQLREG_PG_LOG"
        printf 'PORT=%q\n' "$_SQLREG_PG_PORT"
        printf 'TIMEOUT=%q\n' "$_SQLREG_TIMEOUT"
        _sqlreg_helper_common
        cat <<'EOF'
pgctl() { (cd / && runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" "$@"); }

running() { pgctl status >/dev/null 2>&1; }

postmaster_pid() { head -n 1 "$DATA/postmaster.pid" 2>/dev/null; }

do_start() {
    if running; then
        log "already running"
        return 0
    fi
    if port_busy "$PORT"; then
        log "port 127.0.0.1:$PORT is already in use by another process"
        return 1
    fi
    # setsid: the server gets its own session, so a Ctrl-C meant for the
    # test run does not reach it; the scripts stop it themselves.
    if ! (cd / && setsid -w runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -l "$LOG" \
            -w -t "$TIMEOUT" -s start </dev/null >/dev/null 2>&1); then
        log "PostgreSQL did not start within ${TIMEOUT}s"
        show_log "$LOG"
        return 1
    fi
    local end=$((SECONDS + TIMEOUT))
    until port_busy "$PORT"; do
        if [ "$SECONDS" -ge "$end" ]; then
            log "PostgreSQL is not listening on 127.0.0.1:$PORT"
            show_log "$LOG"
            return 1
        fi
        sleep 0.1
    done
}

do_stop() {
    local mode=${1:-fast} pid
    running || return 0
    pid=$(postmaster_pid)
    if pgctl -w -t "$TIMEOUT" -s -m "$mode" stop >/dev/null 2>&1; then
        return 0
    fi
    log "pg_ctl stop -m $mode failed; trying -m immediate"
    if pgctl -w -t 10 -s -m immediate stop >/dev/null 2>&1; then
        return 0
    fi
    if [ -n "$pid" ] && alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
        log "killing postmaster $pid"
        kill -KILL "$pid" 2>/dev/null
        wait_gone "$pid" 10
    fi
    ! running
}

case "${1:-restart}" in
    start) do_start ;;
    stop) do_stop fast ;;
    kill) do_stop immediate ;;
    restart) do_stop fast && do_start ;;
    status) running ;;
    *) log "usage: $0 [restart|stop|start|kill|status]"; exit 2 ;;
esac
EOF
    } >"$1" && chmod 755 "$1"
}

# Writes the MariaDB control helper to $1.
_sqlreg_write_mariadb_helper() {
    {
        printf '#!/usr/bin/env bash\n'
        printf '# Generated by sqlreg scripts/db-servers.sh for one test run.\n'
        printf '# Usage: %s [restart|stop|start|kill|status]   (default: restart)\n' "$1"
        printf 'set -uo pipefail\n'
        printf 'NAME=mariadb-ctl\n'
        printf 'PIDFILE=%q\n' "$_SQLREG_MARIADB_PIDFILE"
        printf 'SOCKET=%q\n' "$_SQLREG_MARIADB_SOCKET"
        printf 'LOG=%q\n' "$_SQLREG_MARIADB_LOG"
        printf 'STDERR_LOG=%q\n' "$_SQLREG_MARIADB_DIR/mariadbd.stderr"
        printf 'PORT=%q\n' "$_SQLREG_MARIADB_PORT"
        printf 'TIMEOUT=%q\n' "$_SQLREG_TIMEOUT"
        printf 'SERVER=('
        printf ' %q' "$_SQLREG_MARIADBD" --no-defaults \
            "--datadir=$_SQLREG_MARIADB_DIR/data" \
            "--tmpdir=$_SQLREG_MARIADB_DIR/tmp" \
            "--socket=$_SQLREG_MARIADB_SOCKET" \
            "--pid-file=$_SQLREG_MARIADB_PIDFILE" \
            "--log-error=$_SQLREG_MARIADB_LOG" \
            "--port=$_SQLREG_MARIADB_PORT" \
            --bind-address=127.0.0.1 \
            --user=mysql \
            --skip-name-resolve \
            --skip-log-bin \
            --max-connections=300 \
            --innodb-buffer-pool-size=64M \
            --innodb-flush-log-at-trx-commit=0 \
            --innodb-doublewrite=0 \
            --character-set-server=utf8mb4 \
            --collation-server=utf8mb4_general_ci
        printf ' )\n'
        _sqlreg_helper_common
        cat <<'EOF'
server_pid() {
    local pid
    pid=$(head -n 1 "$PIDFILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && alive "$pid" || return 1
    # Sanity check against a recycled pid; the pid itself comes from the
    # server's own pid file.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mariadbd ] || return 1
    printf '%s\n' "$pid"
}

running() { server_pid >/dev/null; }

ping() {
    env -u MYSQL_PWD -u MYSQL_HOST -u MYSQL_TCP_PORT -u MYSQL_UNIX_PORT \
        mariadb-admin --no-defaults --socket="$SOCKET" --user=root \
        --connect-timeout=2 ping >/dev/null 2>&1
}

do_start() {
    local pid end
    if running; then
        log "already running"
        return 0
    fi
    if port_busy "$PORT"; then
        log "port 127.0.0.1:$PORT is already in use by another process"
        return 1
    fi
    rm -f "$PIDFILE"
    # setsid: own session, so a Ctrl-C meant for the test run does not reach
    # the server. No job control here, so $! is mariadbd itself.
    (cd / && exec setsid "${SERVER[@]}") </dev/null >>"$STDERR_LOG" 2>&1 &
    pid=$!
    end=$((SECONDS + TIMEOUT))
    until ping && port_busy "$PORT"; do
        if ! alive "$pid"; then
            log "mariadbd exited during startup"
            show_log "$LOG" "$STDERR_LOG"
            return 1
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            log "MariaDB did not accept connections within ${TIMEOUT}s"
            show_log "$LOG" "$STDERR_LOG"
            kill -TERM "$pid" 2>/dev/null
            wait_gone "$pid" 20 || kill -KILL "$pid" 2>/dev/null
            return 1
        fi
        sleep 0.1
    done
}

do_stop() {
    local sig=${1:-TERM} pid
    pid=$(server_pid) || return 0
    kill "-$sig" "$pid" 2>/dev/null
    if ! wait_gone "$pid" 20; then
        log "mariadbd $pid still running 20s after SIG$sig; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        wait_gone "$pid" 10 || { log "mariadbd $pid would not die"; return 1; }
    fi
    rm -f "$PIDFILE"
}

case "${1:-restart}" in
    start) do_start ;;
    stop) do_stop TERM ;;
    kill) do_stop KILL ;;
    restart) do_stop TERM && do_start ;;
    status) running ;;
    *) log "usage: $0 [restart|stop|start|kill|status]"; exit 2 ;;
esac
EOF
    } >"$1" && chmod 755 "$1"
}

_sqlreg_tail_logs() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            _sqlreg_log "last lines of $f:"
            tail -n 40 "$f" >&2
        fi
    done
}

_sqlreg_start_pg() {
    local dir=$_SQLREG_DB_DIR/pg pw_sql
    _SQLREG_PG_DATA=$dir/data
    _SQLREG_PG_LOG=$dir/postgresql.log
    _SQLREG_PG_SOCKET_DIR=$dir
    mkdir -p "$dir" && chown postgres: "$dir" && chmod 755 "$dir" || return 1
    _sqlreg_write_pg_helper "$_SQLREG_DB_DIR/pg-ctl" || return 1

    if ! (cd / && runuser -u postgres -- "$_SQLREG_PG_BIN/initdb" -D "$_SQLREG_PG_DATA" \
            --username=postgres --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C --no-sync) >"$dir/initdb.log" 2>&1; then
        _sqlreg_log "initdb failed"
        _sqlreg_tail_logs "$dir/initdb.log"
        return 1
    fi
    cat >>"$_SQLREG_PG_DATA/postgresql.conf" <<EOF

# --- sqlreg test settings (scripts/db-servers.sh) ---
listen_addresses = '127.0.0.1'
port = $_SQLREG_PG_PORT
unix_socket_directories = '$_SQLREG_PG_SOCKET_DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
EOF
    # Password auth on TCP for everyone; the unix socket (in our private
    # directory) trusts only the postgres superuser, used for setup.
    cat >"$_SQLREG_PG_DATA/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 trust
local   all       all                      scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
EOF
    "$_SQLREG_DB_DIR/pg-ctl" start || return 1

    pw_sql=${SQLREG_DB_PASSWORD//\'/\'\'}
    if ! PGCONNECT_TIMEOUT=10 "$_SQLREG_PG_PSQL" -X -q -v ON_ERROR_STOP=1 \
            -h "$_SQLREG_PG_SOCKET_DIR" -p "$_SQLREG_PG_PORT" -U postgres -d postgres \
            >"$dir/setup.log" 2>&1 <<EOF
CREATE ROLE $SQLREG_DB_USER LOGIN CREATEDB PASSWORD '$pw_sql';
GRANT pg_signal_backend TO $SQLREG_DB_USER;
GRANT pg_read_all_stats TO $SQLREG_DB_USER;
CREATE DATABASE $SQLREG_DB_NAME OWNER $SQLREG_DB_USER;
EOF
    then
        _sqlreg_log "creating the PostgreSQL role/database failed"
        _sqlreg_tail_logs "$dir/setup.log" "$_SQLREG_PG_LOG"
        return 1
    fi
    # The real thing: password login over TCP.
    if ! PGPASSWORD=$SQLREG_DB_PASSWORD PGCONNECT_TIMEOUT=10 "$_SQLREG_PG_PSQL" -X -q -At \
            -h 127.0.0.1 -p "$_SQLREG_PG_PORT" -U "$SQLREG_DB_USER" -d "$SQLREG_DB_NAME" \
            -c 'select 1' >"$dir/check.log" 2>&1; then
        _sqlreg_log "password login to PostgreSQL over TCP failed"
        _sqlreg_tail_logs "$dir/check.log" "$_SQLREG_PG_LOG"
        return 1
    fi
}

_sqlreg_start_mariadb() {
    local dir=$_SQLREG_DB_DIR/mariadb pw_sql
    _SQLREG_MARIADB_DIR=$dir
    _SQLREG_MARIADB_SOCKET=$dir/mariadb.sock
    _SQLREG_MARIADB_PIDFILE=$dir/mariadb.pid
    _SQLREG_MARIADB_LOG=$dir/mariadb.err
    mkdir -p "$dir/data" "$dir/tmp" && chown -R mysql: "$dir" && chmod 755 "$dir" || return 1
    _sqlreg_write_mariadb_helper "$_SQLREG_DB_DIR/mariadb-ctl" || return 1

    # Root may log in only through the unix socket, as the OS root user;
    # no anonymous accounts, no test database.
    if ! (cd / && mariadb-install-db --no-defaults --datadir="$dir/data" --user=mysql \
            --auth-root-authentication-method=socket --auth-root-socket-user=root \
            --skip-test-db --skip-name-resolve) >"$_SQLREG_DB_DIR/mariadb-install-db.log" 2>&1; then
        _sqlreg_log "mariadb-install-db failed"
        _sqlreg_tail_logs "$_SQLREG_DB_DIR/mariadb-install-db.log"
        return 1
    fi
    "$_SQLREG_DB_DIR/mariadb-ctl" start || return 1

    pw_sql=${SQLREG_DB_PASSWORD//\\/\\\\}
    pw_sql=${pw_sql//\'/\'\'}
    if ! env -u MYSQL_PWD -u MYSQL_HOST -u MYSQL_TCP_PORT -u MYSQL_UNIX_PORT \
            mariadb --no-defaults --socket="$_SQLREG_MARIADB_SOCKET" --user=root \
            --connect-timeout=10 >"$_SQLREG_DB_DIR/mariadb-setup.log" 2>&1 <<EOF
DELETE FROM mysql.global_priv WHERE User = '';
FLUSH PRIVILEGES;
CREATE USER '$SQLREG_DB_USER'@'127.0.0.1' IDENTIFIED BY '$pw_sql';
CREATE USER '$SQLREG_DB_USER'@'localhost' IDENTIFIED BY '$pw_sql';
GRANT ALL PRIVILEGES ON *.* TO '$SQLREG_DB_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$SQLREG_DB_USER'@'localhost' WITH GRANT OPTION;
CREATE DATABASE $SQLREG_DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
FLUSH PRIVILEGES;
EOF
    then
        _sqlreg_log "creating the MariaDB user/database failed"
        _sqlreg_tail_logs "$_SQLREG_DB_DIR/mariadb-setup.log" "$_SQLREG_MARIADB_LOG"
        return 1
    fi
    if ! MYSQL_PWD=$SQLREG_DB_PASSWORD mariadb --no-defaults --protocol=tcp --host=127.0.0.1 \
            --port="$_SQLREG_MARIADB_PORT" --user="$SQLREG_DB_USER" --connect-timeout=10 \
            --batch --skip-column-names -e 'select 1' "$SQLREG_DB_NAME" \
            >"$_SQLREG_DB_DIR/mariadb-check.log" 2>&1; then
        _sqlreg_log "password login to MariaDB over TCP failed"
        _sqlreg_tail_logs "$_SQLREG_DB_DIR/mariadb-check.log" "$_SQLREG_MARIADB_LOG"
        return 1
    fi
}

_sqlreg_unexport() {
    unset SQLREG_TEST_HOST SQLREG_TEST_PG_PORT SQLREG_TEST_MARIADB_PORT \
        SQLREG_TEST_USER SQLREG_TEST_PASSWORD SQLREG_TEST_DATABASE \
        SQLREG_TEST_PG_URL SQLREG_TEST_MARIADB_URL SQLREG_TEST_DB_DIR \
        SQLREG_TEST_PG_BIN SQLREG_TEST_PG_DATA SQLREG_TEST_PG_PIDFILE SQLREG_TEST_PG_SOCKET_DIR \
        SQLREG_TEST_PG_LOG SQLREG_TEST_PG_RESTART SQLREG_TEST_MARIADB_PIDFILE \
        SQLREG_TEST_MARIADB_SOCKET SQLREG_TEST_MARIADB_LOG SQLREG_TEST_MARIADB_RESTART
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
    _SQLREG_TIMEOUT=${SQLREG_DB_START_TIMEOUT:-60}
    if [ "$_SQLREG_PG_PORT" = "$_SQLREG_MARIADB_PORT" ]; then
        _sqlreg_log "SQLREG_PG_PORT and SQLREG_MARIADB_PORT must differ"
        return 1
    fi
    local port
    for port in "$_SQLREG_PG_PORT" "$_SQLREG_MARIADB_PORT"; do
        if _sqlreg_port_busy "$port"; then
            _sqlreg_log "port 127.0.0.1:$port is already in use (a leftover server?" \
                "set SQLREG_PG_PORT / SQLREG_MARIADB_PORT to use other ports)"
            return 1
        fi
    done

    _sqlreg_ensure_pg || return 1
    _sqlreg_ensure_mariadb || return 1
    _SQLREG_PG_PSQL=$_SQLREG_PG_BIN/psql
    [ -x "$_SQLREG_PG_PSQL" ] || _SQLREG_PG_PSQL=psql

    _SQLREG_DB_DIR=$(mktemp -d "${SQLREG_DB_TMPDIR:-/tmp}/sqlreg-db.XXXXXX") || {
        _SQLREG_DB_DIR=
        return 1
    }
    chmod 755 "$_SQLREG_DB_DIR"

    if ! _sqlreg_start_pg; then
        _sqlreg_log "PostgreSQL failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi
    if ! _sqlreg_start_mariadb; then
        _sqlreg_log "MariaDB failed to start; cleaning up"
        sqlreg_db_stop
        return 1
    fi

    pw_url=$(_sqlreg_urlencode "$SQLREG_DB_PASSWORD")
    export SQLREG_TEST_HOST=127.0.0.1
    export SQLREG_TEST_PG_PORT=$_SQLREG_PG_PORT
    export SQLREG_TEST_MARIADB_PORT=$_SQLREG_MARIADB_PORT
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
    # Let `pg_ctl` be found by name even where only /usr/lib/postgresql/N/bin has it.
    if ! command -v pg_ctl >/dev/null 2>&1; then
        export PATH="$_SQLREG_PG_BIN:$PATH"
    fi

    pg_version=$("$_SQLREG_PG_BIN/postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //' || true)
    mariadb_version=$("$_SQLREG_MARIADBD" --version 2>/dev/null | sed -n 's/.*Ver \([^ ]*\).*/\1/p' || true)
    _sqlreg_log "up in $((SECONDS - t0))s: PostgreSQL ${pg_version:-?} on 127.0.0.1:$_SQLREG_PG_PORT," \
        "MariaDB ${mariadb_version:-?} on 127.0.0.1:$_SQLREG_MARIADB_PORT (files in $_SQLREG_DB_DIR)"
}

sqlreg_db_stop() {
    local dir=${_SQLREG_DB_DIR:-} rc=0
    [ -n "$dir" ] || return 0
    if [ -x "$dir/mariadb-ctl" ]; then
        "$dir/mariadb-ctl" stop || rc=1
    fi
    if [ -x "$dir/pg-ctl" ]; then
        "$dir/pg-ctl" stop || rc=1
    fi
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
