#!/usr/bin/env bash
#
# Runs sqlreg's benchmark suite (the `sqlreg-bench` workspace member) against
# throwaway PostgreSQL and MariaDB servers (scripts/db-servers.sh), with
# Python core-lib installed into a virtualenv as one of the contenders, then
# stops the servers again.
#
# Usage: bash scripts/bench.sh [all | goals | w1 ... w9]... [--quick] [--no-corelib] [--runs N] [--out DIR]
#   bash scripts/bench.sh            every workload, release build, writes BENCHMARKS.md
#   bash scripts/bench.sh goals      what issue 21's goals are judged on, in minutes
#   bash scripts/bench.sh --quick    seconds, tiny N, debug build (what CI runs)
#   bash scripts/bench.sh w6 --out target/w6   one workload, report kept out of the root
#   bash scripts/bench.sh --no-corelib          a full run that never reaches PyPI: core-lib
#                                               runs only from an existing virtualenv
#
# `cargo run -p sqlreg-bench --release -- all` ends up here too: without the
# servers' environment the binary re-runs itself through this script
# (SQLREG_BENCH_BIN names it).
#
# core-lib: a virtualenv at $SQLREG_BENCH_VENV (default target/bench-venv)
# with core-lib 0.2.2 (it needs Python 3.10: pyenv's 3.10.13, else any
# python3.10) and the psycopg2 / PyMySQL drivers. Creating it downloads about
# 40 packages from PyPI (a minute or two), so --quick only uses one that
# already exists and otherwise reports core-lib as skipped. If it cannot be
# created, core-lib is reported unavailable and the rest still runs.
#
# mariadb-slap, MariaDB's load client, comes with Debian's mariadb-client
# package; it is installed (apt-get) when missing. So is valgrind (Debian's
# package), under whose callgrind the bench counts W2's and W7's
# instructions per session (not in --quick).
#
# Needs root, like scripts/test.sh. Ports: SQLREG_PG_PORT / SQLREG_MARIADB_PORT.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=0 offline=0 args=()
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 args+=("$arg") ;;
        --no-corelib) offline=1 ;;
        *) args+=("$arg") ;;
    esac
done

_bench_log() {
    printf 'bench.sh: %s\n' "$*" >&2
}

# Exports SQLREG_BENCH_PYTHON (a Python that imports core_lib) or leaves it
# unset; SQLREG_BENCH_CORELIB says which core-lib, or why there is none.
_bench_corelib() {
    local venv=${SQLREG_BENCH_VENV:-target/bench-venv} python
    local check='import core_lib, psycopg2, pymysql, importlib.metadata as m, platform; print("core-lib", m.version("core-lib"), "on Python", platform.python_version())'
    if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
        if [ "$quick" -eq 1 ]; then
            export SQLREG_BENCH_CORELIB="core-lib: skipped in --quick (no virtualenv at $venv; a full run creates it)"
            return 0
        fi
        if [ "$offline" -eq 1 ]; then
            export SQLREG_BENCH_CORELIB="core-lib: not run (--no-corelib, and no virtualenv at $venv)"
            return 0
        fi
        python=$HOME/.pyenv/versions/3.10.13/bin/python
        [ -x "$python" ] || python=$(command -v python3.10 || true)
        if [ -z "$python" ]; then
            export SQLREG_BENCH_CORELIB="core-lib: unavailable (no Python 3.10 found)"
            return 0
        fi
        _bench_log "creating $venv with $python and installing core-lib 0.2.2 from PyPI"
        rm -rf "$venv"
        if ! { "$python" -m venv "$venv" &&
            "$venv/bin/python" -m pip install -q --disable-pip-version-check \
                core-lib==0.2.2 psycopg2-binary==2.9.10 PyMySQL==1.1.1; } >&2; then
            export SQLREG_BENCH_CORELIB="core-lib: unavailable (pip install failed)"
            return 0
        fi
    fi
    SQLREG_BENCH_PYTHON="$(cd "$venv/bin" && pwd)/python"
    SQLREG_BENCH_CORELIB=$("$SQLREG_BENCH_PYTHON" -c "$check")
    export SQLREG_BENCH_PYTHON SQLREG_BENCH_CORELIB
}

# shellcheck source=scripts/db-servers.sh
source scripts/db-servers.sh

sqlreg_db_stop_on_exit

_bench_corelib
_bench_log "$SQLREG_BENCH_CORELIB"
# No workload runs on the Patroni or Galera clusters: left out, they take
# neither the minute to start nor CPU from the contenders.
export SQLREG_PATRONI=${SQLREG_PATRONI:-off} SQLREG_GALERA=${SQLREG_GALERA:-off}
sqlreg_db_start
if ! command -v mariadb-slap >/dev/null 2>&1; then
    _sqlreg_apt_install mariadb-client || _bench_log "mariadb-slap unavailable: its contender will say so"
fi
if [ "$quick" -eq 0 ] && ! command -v valgrind >/dev/null 2>&1; then
    _sqlreg_apt_install valgrind || _bench_log "valgrind unavailable: instructions per session are not counted"
fi

if [ -n "${SQLREG_BENCH_BIN:-}" ]; then
    "$SQLREG_BENCH_BIN" "${args[@]}"
else
    export SQLREG_BENCH_COMMAND="bash scripts/bench.sh${*:+ $*}"
    if [ "$quick" -eq 1 ]; then
        cargo run -p sqlreg-bench -- "${args[@]}"
    else
        cargo run -p sqlreg-bench --release -- "${args[@]}"
    fi
fi
