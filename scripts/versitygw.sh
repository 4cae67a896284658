#!/usr/bin/env bash
# versitygw.sh DATA_DIR PORT ACCESS_KEY SECRET_KEY
#
# Starts a local S3 server (versitygw, posix backend) in the background with
# versioning on, so buckets can be created with Object Lock. Objects live in
# DATA_DIR/buckets, versions in DATA_DIR/versions; the pid is in
# DATA_DIR/versitygw.pid and the output in DATA_DIR/versitygw.log. PORT is a
# port (listens on 127.0.0.1) or host:port. Running it again while the server
# runs does nothing. The binary is $VERSITYGW, else ./bin/versitygw of this
# repository, else versitygw on PATH. Stop it with: kill "$(cat DATA_DIR/versitygw.pid)"
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 DATA_DIR PORT ACCESS_KEY SECRET_KEY" >&2
	exit 2
fi
data=$1 port=$2 access=$3 secret=$4
case $port in *:*) addr=$port ;; *) addr=127.0.0.1:$port ;; esac

bin=${VERSITYGW:-$(cd "$(dirname "$0")/.." && pwd)/bin/versitygw}
if [ ! -x "$bin" ]; then
	bin=$(command -v versitygw || true)
fi
if [ -z "$bin" ]; then
	echo "versitygw not found: run 'make bin/versitygw' or set VERSITYGW" >&2
	exit 1
fi

mkdir -p "$data/buckets" "$data/versions"
pidfile=$data/versitygw.pid
log=$data/versitygw.log

if [ -f "$pidfile" ]; then
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null && grep -q versitygw "/proc/$pid/cmdline" 2>/dev/null; then
		exit 0 # already running
	fi
	rm -f "$pidfile"
fi

answers() { (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; }
if answers; then
	echo "versitygw.sh: $addr is already in use by another process" >&2
	exit 1
fi

# Credentials go through the environment, not the command line (ps shows that).
ROOT_ACCESS_KEY_ID=$access ROOT_SECRET_ACCESS_KEY=$secret \
	nohup "$bin" --port "$addr" --quiet posix --versioning-dir "$data/versions" "$data/buckets" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

for _ in $(seq 1 100); do
	if answers; then
		exit 0
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$pidfile"
		echo "versitygw.sh: versitygw exited; last lines of $log:" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "versitygw.sh: versitygw did not answer on $addr within 10s (see $log)" >&2
exit 1
