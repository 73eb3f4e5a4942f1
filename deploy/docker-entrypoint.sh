#!/bin/sh
# govqa's container entrypoint. Started as root (the default), it hands the data folder (/data) to
# the govqa user (uid 10001) where needed, e.g. a bind mount of a host folder owned by root, and runs
# the command as that user; started as another user (docker run --user ...), it runs the command as
# it is.
set -eu
DATA="${GOVQA_DATA:-/data}"
if [ "$(id -u)" = "0" ]; then
    mkdir -p "$DATA"
    # only what govqa does not own yet (a large index handed over once is not walked again); -h:
    # a symbolic link is changed itself, never what it points to
    find "$DATA" -xdev \( ! -user 10001 -o ! -group 10001 \) -exec chown -h 10001:10001 {} +
    export HOME="${GOVQA_HOME:-/home/govqa}"
    exec setpriv --reuid=10001 --regid=10001 --clear-groups -- "$@"
fi
exec "$@"
