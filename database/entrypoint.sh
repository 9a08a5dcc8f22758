#!/bin/sh
# Initialise the data directory on first start, then run the server in the foreground.
#
# Environment: PGDATA (a directory on the data volume), POSTGRES_USER, POSTGRES_DB and
# POSTGRES_PASSWORD (from a Secret). The password reaches initdb through a file in /tmp (an
# in-memory emptyDir) that is removed at once; it is never an argument or in the log, and it
# is taken out of the server's environment.
set -eu

: "${PGDATA:?PGDATA must be set}"
: "${POSTGRES_USER:?POSTGRES_USER must be set}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set to initialise the database}"
    umask 077
    pwfile=$(mktemp /tmp/pwfile.XXXXXX)
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --no-locale
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        db=$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')
        owner=$(printf '%s' "$POSTGRES_USER" | sed 's/"/""/g')
        echo "CREATE DATABASE \"$db\" OWNER \"$owner\"" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "initialised $PGDATA (database $POSTGRES_DB, owner $POSTGRES_USER)"
fi
unset POSTGRES_PASSWORD

# The socket directory is an emptyDir; a runtime that mounts it root-owned 0755 (podman's
# kube play does) leaves TCP only, which is all the clients and probes use.
sockets=/var/run/postgresql
if ! touch "$sockets/.probe" 2>/dev/null; then
    echo "$sockets is not writable; listening on TCP only"
    sockets=""
fi
rm -f "$sockets/.probe" 2>/dev/null || true

exec postgres -D "$PGDATA" \
    -c listen_addresses='*' \
    -c unix_socket_directories="$sockets" \
    -c logging_collector=off \
    "$@"
