# shellcheck shell=bash
#
# TLS for the throwaway servers: a CA made with `openssl` for this run only,
# the server certificate the TLS servers present, a client certificate for
# the certificate-only user, a second CA that signed none of them, and a
# PostgreSQL and a MariaDB server of their own with TLS on.
# Sourced by scripts/db-servers.sh; not meant to be used on its own.
#
# Files, in $_SQLREG_DB_DIR/tls (made afresh by every start, never cached):
#   ca.crt               the test CA (the right `sslrootcert` / `ssl-ca`)
#   other-ca.crt         an unrelated CA (a wrong `sslrootcert` / `ssl-ca`)
#   server.crt           signed by ca.crt; subjectAltName DNS:localhost,
#                        IP:127.0.0.1 (any other name fails verify-full)
#   pg/server.key        its key, 0600 owned by postgres (as PostgreSQL demands)
#   mariadb/server.key   the same key, 0600 owned by mysql
#   client.crt, client.key  signed by ca.crt, CN = $SQLREG_TLS_CERT_USER;
#                        the key 0600 owned by root (the tests run as root)
# The CA keys stay in the directory (0600, root) and die with it.
#
# The TLS servers (pg-tls, mariadb-tls: PostgreSQL ssl = on, MariaDB
# --ssl-*) hold the test user (password login, with or without TLS) and
# database, and the certificate user. Every other server has no TLS, so
# `sslmode=require` against it fails: the primaries stay plain because
# sqlx's default mode (`prefer`) would use TLS wherever it is offered, and
# sqlx 0.9.0 pays some 40-90 ms per new TLS connection here (it does not set
# TCP_NODELAY, so the handshake waits for delayed ACKs): with TLS on the
# primaries the suite's connection-heavy tests took several times as long.

# The user that logs in with the client certificate alone (PostgreSQL
# `hostssl … cert`, MariaDB `REQUIRE SUBJECT`), without a password.
SQLREG_TLS_CERT_USER=sqlreg_cert

_sqlreg_ensure_openssl() {
    command -v openssl >/dev/null 2>&1 && return 0
    _sqlreg_apt_install openssl || return 1
    command -v openssl >/dev/null 2>&1 || { _sqlreg_log "openssl not found even after installing it"; return 1; }
}

# openssl, its output in $_SQLREG_TLS_DIR/openssl.log (shown on failure).
_sqlreg_openssl() {
    if ! openssl "$@" >>"$_SQLREG_TLS_DIR/openssl.log" 2>&1; then
        _sqlreg_log "openssl $1 failed"
        _sqlreg_tail_logs "$_SQLREG_TLS_DIR/openssl.log"
        return 1
    fi
}

# A self-signed CA: key $1.key, certificate $1.crt, common name $2.
_sqlreg_tls_ca() {
    _sqlreg_openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1.key" -out "$1.crt" -days 7 -subj "/CN=$2"
}

# A certificate $1.crt (key $1.key) for common name $2 signed by the test
# CA, with the X.509 extensions in $3 (one per line).
_sqlreg_tls_leaf() {
    printf '%s\n' "$3" >"$1.ext" &&
        _sqlreg_openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" &&
        _sqlreg_openssl x509 -req -in "$1.csr" -CA "$_SQLREG_TLS_DIR/ca.crt" \
            -CAkey "$_SQLREG_TLS_DIR/ca.key" -CAcreateserial -CAserial "$_SQLREG_TLS_DIR/ca.srl" \
            -days 7 -extfile "$1.ext" -out "$1.crt" &&
        rm -f "$1.csr" "$1.ext"
}

# Makes every file listed at the top of this file.
_sqlreg_make_tls() {
    local dir=$_SQLREG_DB_DIR/tls
    _SQLREG_TLS_DIR=$dir
    (umask 077 && mkdir -p "$dir/pg" "$dir/mariadb") && chmod 755 "$dir" || return 1
    (
        umask 077
        _sqlreg_tls_ca "$dir/ca" "sqlreg test CA" &&
            _sqlreg_tls_ca "$dir/other-ca" "sqlreg unrelated CA" &&
            _sqlreg_tls_leaf "$dir/server" localhost \
                "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1" &&
            _sqlreg_tls_leaf "$dir/client" "$SQLREG_TLS_CERT_USER" \
                "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth"
    ) || return 1
    # Certificates are public; each server gets a key of its own to own.
    chmod 644 "$dir/ca.crt" "$dir/other-ca.crt" "$dir/server.crt" "$dir/client.crt" &&
        chmod 755 "$dir/pg" "$dir/mariadb" &&
        install -m 600 -o postgres -g postgres "$dir/server.key" "$dir/pg/server.key" &&
        install -m 600 -o mysql -g mysql "$dir/server.key" "$dir/mariadb/server.key" &&
        rm -f "$dir/server.key" || return 1
}

# postgresql.conf lines that turn TLS on (the standby turns it off again).
_sqlreg_pg_tls_conf() {
    printf 'ssl = on\n'
    printf "ssl_cert_file = '%s'\n" "$_SQLREG_TLS_DIR/server.crt"
    printf "ssl_key_file = '%s'\n" "$_SQLREG_TLS_DIR/pg/server.key"
    printf "ssl_ca_file = '%s'\n" "$_SQLREG_TLS_DIR/ca.crt"
}

# mariadbd options that turn TLS on.
_sqlreg_mariadb_tls_options() {
    printf '%s\n' "--ssl-cert=$_SQLREG_TLS_DIR/server.crt" \
        "--ssl-key=$_SQLREG_TLS_DIR/mariadb/server.key" \
        "--ssl-ca=$_SQLREG_TLS_DIR/ca.crt"
}

# psql's check of a certificate login over TLS to the PostgreSQL server on port $1.
_sqlreg_pg_check_cert_login() {
    PGCONNECT_TIMEOUT=10 "$_SQLREG_PG_PSQL" -X -q -At \
        "host=127.0.0.1 port=$1 dbname=$SQLREG_DB_NAME user=$SQLREG_TLS_CERT_USER \
        sslmode=verify-full sslrootcert=$_SQLREG_TLS_DIR/ca.crt \
        sslcert=$_SQLREG_TLS_DIR/client.crt sslkey=$_SQLREG_TLS_DIR/client.key" \
        -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'
}

# The certificate user, as SQL for a new MariaDB server's root.
_sqlreg_mariadb_cert_user_sql() {
    cat <<EOF
CREATE USER '$SQLREG_TLS_CERT_USER'@'127.0.0.1' REQUIRE SUBJECT '/CN=$SQLREG_TLS_CERT_USER';
GRANT ALL PRIVILEGES ON \`$SQLREG_DB_NAME\`.* TO '$SQLREG_TLS_CERT_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
}

# mariadb's check of a certificate login over TLS to the MariaDB server on port $1.
_sqlreg_mariadb_check_cert_login() {
    env -u MYSQL_PWD -u MYSQL_HOST -u MYSQL_TCP_PORT -u MYSQL_UNIX_PORT \
        mariadb --no-defaults --protocol=tcp --host=127.0.0.1 --port="$1" \
        --user="$SQLREG_TLS_CERT_USER" --connect-timeout=10 --batch --skip-column-names \
        --ssl-ca="$_SQLREG_TLS_DIR/ca.crt" --ssl-cert="$_SQLREG_TLS_DIR/client.crt" \
        --ssl-key="$_SQLREG_TLS_DIR/client.key" --ssl-verify-server-cert \
        -e "SHOW SESSION STATUS LIKE 'Ssl_cipher'" "$SQLREG_DB_NAME"
}

# The TLS servers: pg-tls and mariadb-tls (helpers pg-tls-ctl, mariadb-tls-ctl).
_sqlreg_start_tls_servers() {
    _sqlreg_start_pg_server pg-tls "$_SQLREG_PG_TLS_PORT" tls || return 1
    # No binary log: nothing replicates from it.
    _sqlreg_start_mariadb_server mariadb-tls "$_SQLREG_MARIADB_TLS_PORT" tls \
        --server-id=3 --skip-log-bin
}
