#!/bin/sh
# Initialise the data directory on first start, then run the server until it is told to stop.
#
# Shutdown: the container runtime stops a container with SIGTERM (Kubernetes, unless told
# otherwise) or the image's STOPSIGNAL. PostgreSQL's own reading of SIGTERM is a "smart"
# shutdown, which waits for every client to disconnect: with the API's pooled connections
# open that never happens, so the kubelet would SIGKILL it at the end of the grace period
# and the next start would run crash recovery. So the server is this script's child and
# SIGTERM and SIGINT both become a fast shutdown (SIGINT to postgres: roll back open
# transactions, disconnect clients, checkpoint, exit 0); SIGQUIT stays an immediate shutdown.
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

postgres -D "$PGDATA" \
    -c listen_addresses='*' \
    -c unix_socket_directories="$sockets" \
    -c logging_collector=off \
    "$@" &
server=$!
trap 'kill -INT "$server" 2>/dev/null || true' TERM INT
trap 'kill -QUIT "$server" 2>/dev/null || true' QUIT

# A trapped signal interrupts wait; wait again until the server itself has exited.
status=0
while :; do
    status=0
    wait "$server" || status=$?
    kill -0 "$server" 2>/dev/null || break
done
exit "$status"
