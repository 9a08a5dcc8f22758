#!/bin/sh
# Initialise the data directory if needed, finish whatever a previous start left undone, keep
# the owner role's password equal to the mounted file, and run the server until told to stop.
#
# Every start, in this order (each step is idempotent, so a kill at any point is repaired by
# the next start):
#   1. initdb, into a staging directory renamed to PGDATA only once complete: a kill during
#      initdb leaves no PGDATA, and the next start runs initdb again.
#   2. the server starts with the access rules this script writes (see below), then
#   3. the owner role gets the password of POSTGRES_PASSWORD_FILE (ALTER ROLE) and the
#      database POSTGRES_DB is created if it is missing. Only then is the pod ready:
#      postgres-ready (the readiness probe) needs the marker written after this step and a
#      session on POSTGRES_DB.
#   4. while the server runs, a changed password file (a rotated Secret, updated in place by
#      the kubelet) is applied to the role within PASSWORD_CHECK_SECONDS (default 5); the old
#      password stops working then.
# A step that cannot be finished (the role does not exist: the volume was initialised for
# another POSTGRES_USER) stops the container with the reason and the fix.
#
# Access rules (pg_hba.conf and pg_ident.conf generated under ADMIN_DIR on every start, so an
# existing volume gets them too): the owner role through the Unix socket in ADMIN_DIR (mode
# 0700, inside the container only) by peer authentication of the container's own user, which
# is how steps 3 and 4 and the readiness probe connect without a password; every other
# connection, TCP included, with scram-sha-256.
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
# mounted read-only); optionally POSTGRES_TLS_DIR, the directory of tls.crt and tls.key
# (TLS on, non-TLS TCP refused, a renewed certificate reloaded). The password is read from that file only; it is never in the
# environment, an argument or the log. A POSTGRES_PASSWORD variable is refused.
set -eu

: "${PGDATA:?PGDATA must be set}"
: "${POSTGRES_USER:?POSTGRES_USER must be set}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE must name the file holding the owner role password}"
: "${PASSWORD_CHECK_SECONDS:=5}"
ADMIN_DIR=/tmp/postgres-admin
export POSTGRES_PASSWORD_FILE

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
if [ ! -r "$POSTGRES_PASSWORD_FILE" ] || [ ! -s "$POSTGRES_PASSWORD_FILE" ]; then
    echo "POSTGRES_PASSWORD_FILE ($POSTGRES_PASSWORD_FILE) is not a readable, non-empty file" >&2
    exit 66
fi

# The port comes from PGPORT (default 5432), which the server and this script's own psql and
# pg_isready all read; a port given only to the server would leave step 3 waiting forever.
for arg in "$@"; do
    case "$arg" in
        -p | -p[0-9]* | port=* | --port=*)
            echo "the port is set with PGPORT, not the server argument $arg" >&2
            exit 64
            ;;
    esac
done

umask 077

# 1. initdb, atomically.
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
        echo "$PGDATA holds files but no PG_VERSION: it is not a data directory this image finished" \
            "initialising. Move its contents away (or empty the volume) and start again." >&2
        exit 65
    fi
    staging="$PGDATA.initdb"
    rm -rf "$staging"
    [ -d "$PGDATA" ] && rmdir "$PGDATA"
    initdb --pgdata="$staging" --username="$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >/dev/null
    mv "$staging" "$PGDATA"
    echo "initialised $PGDATA (owner $POSTGRES_USER)"
fi

# 2. Access rules and the server. The marker says steps 3 are done for this start; /tmp
# outlives a container restart within the pod, so a previous start's marker goes first.
mkdir -p "$ADMIN_DIR"
chmod 0700 "$ADMIN_DIR"
rm -f "$ADMIN_DIR/initialised"
os_user=$(whoami)
quoted_user=$(printf '%s' "$POSTGRES_USER" | sed 's/"/""/g')
printf 'owner "%s" "%s"\n' "$os_user" "$quoted_user" > "$ADMIN_DIR/pg_ident.conf"
# TLS when POSTGRES_TLS_DIR names a directory with tls.crt and tls.key (a kubernetes.io/tls
# Secret volume): TCP connections without TLS are then refused (hostssl only).
tcp_rule="host all all all scram-sha-256"
if [ -n "${POSTGRES_TLS_DIR:-}" ]; then
    for f in tls.crt tls.key; do
        if [ ! -r "$POSTGRES_TLS_DIR/$f" ]; then
            echo "POSTGRES_TLS_DIR ($POSTGRES_TLS_DIR) has no readable $f: mount the kubernetes.io/tls Secret there" >&2
            exit 66
        fi
    done
    set -- -c ssl=on -c ssl_cert_file="$POSTGRES_TLS_DIR/tls.crt" -c ssl_key_file="$POSTGRES_TLS_DIR/tls.key" \
        -c ssl_min_protocol_version=TLSv1.2 "$@"
    tcp_rule="hostssl all all all scram-sha-256"
fi
{
    printf 'local all "%s" peer map=owner\n' "$quoted_user"
    echo "local all all scram-sha-256"
    echo "$tcp_rule"
} > "$ADMIN_DIR/pg_hba.conf"

# The socket directory is an emptyDir; a runtime that mounts it root-owned 0755 (podman's
# kube play does) leaves TCP only for the clients (this script uses ADMIN_DIR's socket).
sockets=/var/run/postgresql
if touch "$sockets/.probe" 2>/dev/null; then
    rm -f "$sockets/.probe"
    sockets="$sockets,$ADMIN_DIR"
else
    echo "$sockets is not writable; clients use TCP only"
    sockets="$ADMIN_DIR"
fi

postgres -D "$PGDATA" \
    -c listen_addresses='*' \
    -c unix_socket_directories="$sockets" \
    -c hba_file="$ADMIN_DIR/pg_hba.conf" \
    -c ident_file="$ADMIN_DIR/pg_ident.conf" \
    -c logging_collector=off \
    "$@" &
server=$!
trap 'kill -INT "$server" 2>/dev/null || true' TERM INT
trap 'kill -QUIT "$server" 2>/dev/null || true' QUIT

running() {
    # kill -0 also succeeds on an exited child this shell has not reaped yet.
    [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]
}

admin_sql() {
    # The password reaches the server inside the SQL read from standard input: psql reads the
    # file itself (\set with backquotes), and a failing statement is never written to the log.
    psql -X -q -v ON_ERROR_STOP=1 -h "$ADMIN_DIR" -U "$POSTGRES_USER" -d postgres \
        -v user="$POSTGRES_USER" -v db="$POSTGRES_DB" "$@"
}

apply_password() {
    admin_sql <<'SQL'
SET log_min_error_statement = panic;
SET log_statement = none;
\set password `cat "$POSTGRES_PASSWORD_FILE"`
ALTER ROLE :"user" WITH LOGIN PASSWORD :'password';
\unset password
SQL
}

# 3. Finish the initialisation. Crash recovery after a kill can take a while: wait as long as
# the server lives (the startup probe bounds it).
until pg_isready -q -h "$ADMIN_DIR" -d postgres; do
    if ! running "$server"; then
        wait "$server" || exit $?
        exit 1
    fi
    sleep 0.2
done
# Peer authentication maps this container's user to POSTGRES_USER only: if that fails, the role
# does not exist.
if ! admin_sql -tAc "SELECT 1" >/dev/null; then
    echo "role $POSTGRES_USER cannot be used on $PGDATA: the volume was initialised for another" \
        "POSTGRES_USER. Set the user the volume was created with, or start from an empty volume." >&2
    kill -INT "$server"
    wait "$server" || true
    exit 65
fi
apply_password
admin_sql <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
touch "$ADMIN_DIR/initialised"
echo "ready: database $POSTGRES_DB, owner $POSTGRES_USER, password from $POSTGRES_PASSWORD_FILE"

tls_files() {
    [ -n "${POSTGRES_TLS_DIR:-}" ] && cat "$POSTGRES_TLS_DIR/tls.crt" "$POSTGRES_TLS_DIR/tls.key" 2>/dev/null | cksum
}

# 4. Apply a rotated password (and a renewed certificate) while the server runs.
(
    trap - TERM INT QUIT
    applied=$(cksum < "$POSTGRES_PASSWORD_FILE")
    certificate=$(tls_files || true)
    while sleep "$PASSWORD_CHECK_SECONDS"; do
        renewed=$(tls_files || true)
        if [ "$renewed" != "$certificate" ] && admin_sql -tAc "SELECT pg_reload_conf()" >/dev/null; then
            certificate=$renewed
            echo "certificate in $POSTGRES_TLS_DIR changed: configuration reloaded"
        fi
        current=$(cksum < "$POSTGRES_PASSWORD_FILE" 2>/dev/null) || continue
        [ "$current" = "$applied" ] && continue
        [ -s "$POSTGRES_PASSWORD_FILE" ] || continue
        if apply_password; then
            applied=$current
            echo "password of role $POSTGRES_USER changed to the new content of $POSTGRES_PASSWORD_FILE"
        fi
    done
) &
watcher=$!

# A trapped signal interrupts wait; wait again until the server itself has exited.
status=0
while :; do
    status=0
    wait "$server" || status=$?
    kill -0 "$server" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null || true
exit "$status"
