#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks (team libraries, docs/team-library.md).
#
#   bash scripts/postgres.sh start   # prints postgresql://USER@127.0.0.1:PORT/fabricsearch
#   bash scripts/postgres.sh url     # the running server's URL
#   bash scripts/postgres.sh stop    # stops it and deletes its data folder
#
# Uses Debian's postgresql package (installed with apt-get when missing and we are root). The
# server runs as a non-root user (postgres when started by root, else the caller), its data in
# a temporary folder, listening on 127.0.0.1 only, on a free port, with trust authentication:
# it is for tests on this machine, never for real data. State: $FABRICSEARCH_PG_STATE
# (default /tmp/fabricsearch-pg-$UID.env).
set -euo pipefail

STATE="${FABRICSEARCH_PG_STATE:-/tmp/fabricsearch-pg-$(id -u).env}"

find_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

install_postgres() {
    if [ "$(id -u)" != 0 ]; then
        echo "postgres.sh: PostgreSQL is not installed and we are not root: apt-get install postgresql" >&2
        return 1
    fi
    echo "postgres.sh: installing PostgreSQL (apt-get install -y postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
}

as_owner() {  # run a command as the server's (non-root) owner
    if [ "$(id -u)" = 0 ]; then
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    if [ -f "$STATE" ]; then
        # shellcheck disable=SC1090
        . "$STATE"
        if as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
            echo "$PG_URL"
            return 0
        fi
        rm -rf "$PG_DATA" "$STATE"
    fi
    local bin
    bin="$(find_bin)" || { install_postgres && bin="$(find_bin)"; } || exit 1
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
    local data user port
    data="$(mktemp -d /tmp/fabricsearch-pg.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$data"
        user=postgres
    else
        user="$(id -un)"
    fi
    chmod 700 "$data"
    as_owner "$bin/initdb" -D "$data/db" -U "$user" --auth=trust -E UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 \
        || as_owner "$bin/initdb" -D "$data/db" -U "$user" --auth=trust -E UTF8 >"$data/initdb.log" 2>&1 \
        || { cat "$data/initdb.log" >&2; exit 1; }
    port="$(free_port)"
    # fsync off: a throwaway test server; a crash loses it anyway.
    as_owner "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
        || { cat "$data/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" fabricsearch
    local url="postgresql://$user@127.0.0.1:$port/fabricsearch"
    printf 'PG_BIN=%q\nPG_DATA=%q\nPG_ROOT=%q\nPG_URL=%q\n' "$bin" "$data/db" "$data" "$url" >"$STATE"
    echo "$url"
}

stop() {
    [ -f "$STATE" ] || return 0
    # shellcheck disable=SC1090
    . "$STATE"
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_ROOT"
    rm -f "$STATE"
}

restart() {  # the load test restarts the server under its clients
    # shellcheck disable=SC1090
    . "$STATE"
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w restart >/dev/null
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) restart ;;
    url) . "$STATE" && echo "$PG_URL" ;;
    *) echo "usage: $0 start|stop|restart|url" >&2; exit 2 ;;
esac
