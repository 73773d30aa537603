#!/bin/sh
# Runs the server (no arguments, or flags such as `--workers 2`) or any other command.
# `exec` makes it PID 1, so SIGTERM from `docker stop` / Kubernetes reaches it directly.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- hypercorn "$@"
fi
exec "$@"
