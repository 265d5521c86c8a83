#!/bin/sh
# Greets whoever is named, then serves the app directory over HTTP when asked to.
set -eu
echo "Hello, ${1:-world}! $(cat "$GREETING_FILE")"
if [ "${2:-}" = serve ]; then
	exec httpd -f -p "$PORT" -h /home/daytona/app
fi
