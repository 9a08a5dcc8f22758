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
# POSTGRES_PASSWORD_FILE, the path of a file holding the password (a key of a Secret volume,
# mounted read-only). initdb reads the password from that file (--pwfile); it is never in
# the environment, an argument or the log. A POSTGRES_PASSWORD variable is refused.
set -eu

: "${PGDATA:?PGDATA must be set}"
: "${POSTGRES_USER:?POSTGRES_USER must be set}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

# An arbitrary UID (OpenShift's restricted-v2 picks one from the namespace's range) has no
# passwd entry, and initdb and postgres refuse to run without a user name: nss_wrapper
# answers their lookups from a passwd file on the writable /tmp.
if ! whoami >/dev/null 2>&1; then
    nss=$(mktemp -d /tmp/nss.XXXXXX)
    printf 'postgres:x:%s:%s:PostgreSQL:/var/lib/postgresql:/usr/sbin/nologin\n' "$(id -u)" "$(id -g)" > "$nss/passwd"
    export LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$nss/passwd" NSS_WRAPPER_GROUP=/etc/group
fi

if [ -n "${POSTGRES_PASSWORD+set}" ]; then
    echo "POSTGRES_PASSWORD is set: pass the password as a file named by POSTGRES_PASSWORD_FILE" >&2
    exit 64
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE must name the password file to initialise the database}"
    if [ ! -r "$POSTGRES_PASSWORD_FILE" ] || [ ! -s "$POSTGRES_PASSWORD_FILE" ]; then
        echo "POSTGRES_PASSWORD_FILE ($POSTGRES_PASSWORD_FILE) is not a readable, non-empty file" >&2
        exit 66
    fi
    umask 077
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --no-locale
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        db=$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')
        owner=$(printf '%s' "$POSTGRES_USER" | sed 's/"/""/g')
        echo "CREATE DATABASE \"$db\" OWNER \"$owner\"" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "initialised $PGDATA (database $POSTGRES_DB, owner $POSTGRES_USER)"
fi

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
