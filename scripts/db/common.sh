# shellcheck shell=bash
#
# What every throwaway test server shares: logging, URL encoding, port
# probes, package installs, and the shell functions of the generated
# control helpers.
# Sourced by scripts/db-servers.sh; not meant to be used on its own.

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

# Keeps the kernel from handing the test bed's ports to outgoing
# connections: they lie in Linux's ephemeral range (32768-60999), and a port
# a server binds only now and then (Galera's IST and SST receivers, a node
# or a PgBouncer started again) may be the local port of a client
# connection at that moment. The bind then fails: a Galera node that cannot
# receive an IST asks for an SST, which aborts it while it runs.
# Adds the ports to net.ipv4.ip_local_reserved_ports (per network
# namespace) and keeps the previous value in $1/reserved-ports.before for
# _sqlreg_release_ports; where the file is not writable it says so and goes on.
_sqlreg_reserve_ports() {
    local dir=$1 sysctl=/proc/sys/net/ipv4/ip_local_reserved_ports before
    shift
    before=$(cat "$sysctl" 2>/dev/null) || return 0
    if printf '%s' "${before:+$before,}$(tr ' ' '\n' <<<"$*" | paste -sd, -)" >"$sysctl" 2>/dev/null; then
        printf '%s\n' "$before" >"$dir/reserved-ports.before"
    else
        _sqlreg_log "could not reserve the test bed's ports (net.ipv4.ip_local_reserved_ports);" \
            "an outgoing connection may take one that a server binds later"
    fi
}

# Puts back the reserved ports _sqlreg_reserve_ports found in $1.
_sqlreg_release_ports() {
    local dir=$1
    if [ -f "$dir/reserved-ports.before" ]; then
        cat "$dir/reserved-ports.before" >/proc/sys/net/ipv4/ip_local_reserved_ports || return 1
    fi
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

_sqlreg_tail_logs() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            _sqlreg_log "last lines of $f:"
            tail -n 40 "$f" >&2
        fi
    done
}
