#!/usr/bin/env bash
# loadgen.sh [LOADGEN FLAGS...]
#
# Runs the load generator against a fresh `chaperone dev` gateway on ports of
# its own (HTTP 18080, demo IdP 18081, S3 17070, media UDP 51000; change them
# with LOADGEN_HTTP_PORT, LOADGEN_IDP_PORT, LOADGEN_S3_PORT, LOADGEN_UDP_PORT),
# with the load generator's demo accounts, then stops the gateway. The flags
# go to loadgen (default: 1 publisher, 200 subscribers, 30 s). The gateway's
# data and log are in $LOADGEN_DIR (default: a new temporary directory, left
# for inspection). Needs bin/chaperone, bin/loadgen and bin/versitygw (make does it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LOADGEN_DIR:-$(mktemp -d -t chaperone-loadgen.XXXXXX)}
mkdir -p "$dir"
http=${LOADGEN_HTTP_PORT:-18080} idp=${LOADGEN_IDP_PORT:-18081} s3=${LOADGEN_S3_PORT:-17070} udp=${LOADGEN_UDP_PORT:-51000} metrics=${LOADGEN_METRICS_PORT:-19090}
url=http://localhost:$http

# The accounts must cover the largest -publishers/-subscribers asked for.
"$root/bin/loadgen" -write-users "$dir/users.json" "$@" >/dev/null

"$root/bin/chaperone" dev -demo_users "$dir/users.json" -listen "127.0.0.1:$http" -public_url "$url" \
	-idp_listen "localhost:$idp" -s3_listen "127.0.0.1:$s3" -udp_port "$udp" -metrics_listen "127.0.0.1:$metrics" -versitygw "$root/bin/versitygw" \
	-data "$dir/data" -database "sqlite:$dir/chaperone.db" >"$dir/gateway.out" 2>"$dir/gateway.log" &
gw=$!
stop() { # the gateway finishes uploading recordings before it exits; give it 30 s
	kill "$gw" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$gw" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$gw" 2>/dev/null || true
	wait "$gw" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 100); do
	if curl -fs "$url/healthz" >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$gw" 2>/dev/null; then
		echo "the gateway did not start; its log:" >&2
		cat "$dir/gateway.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "gateway: $url (pid $gw, log $dir/gateway.log)"
"$root/bin/loadgen" -url "$url" -metrics_url "http://127.0.0.1:$metrics/metrics" "$@"
