#!/bin/sh
# Entrypoint of the offline Postgres image built by `grader images build-offline`.
# Mirrors the official image: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB
# (default: the user name), POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD,
# /docker-entrypoint-initdb.d/*.sql|*.sh; cluster is UTF8 / C.UTF-8.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

# `docker run IMAGE -c fsync=off` → postgres -c fsync=off
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi

if [ "$1" != "postgres" ]; then
    exec "$@"
fi

if [ "$(id -u)" = "0" ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 2777 /var/run/postgresql
    # re-run this script as the postgres user
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"
AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$AUTH_METHOD" != "trust" ]; then
        echo "error: database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        echo "       set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    set +u
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host="$AUTH_METHOD" -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-}
    set -u
    rm -f "$pwfile"
    printf '\n# any host, password\nhost all all all %s\n' "$AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" -w start
    psql_cmd="psql -v ON_ERROR_STOP=1 --no-psqlrc --username=$POSTGRES_USER --host=/var/run/postgresql"
    if [ "$POSTGRES_DB" != "postgres" ]; then
        printf 'CREATE DATABASE :"db";\n' | $psql_cmd --dbname=postgres -v db="$POSTGRES_DB"
    fi
    if [ -d /docker-entrypoint-initdb.d ]; then
        for f in /docker-entrypoint-initdb.d/*; do
            case "$f" in
                *.sh) echo "running $f"; . "$f" ;;
                *.sql) echo "running $f"; $psql_cmd --dbname="$POSTGRES_DB" -f "$f" ;;
                *.sql.gz) echo "running $f"; gunzip -c "$f" | $psql_cmd --dbname="$POSTGRES_DB" ;;
                *) ;;
            esac
        done
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
fi

shift
exec postgres -c listen_addresses='*' "$@"
