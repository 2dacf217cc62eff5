#!/usr/bin/env bash
# Production-path benchmarks (part of `make bench`), each beside its peer in the same run:
#   1. jobs per second through the RabbitMQ and the PostgreSQL transports
#      (10 000 no-op jobs enqueued → claimed → completed)
#   2. a 1 GiB upload into S3 storage: straight to the API vs through nginx (ratio), and
#      the API process's peak RSS during it (target: under 100 MiB)
# Needs the machine's PostgreSQL and RabbitMQ, moto[server] and nginx (make test-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin vidsight --example queue_bench >&2
BIN=./target/release/vidsight
JOBS=${BENCH_JOBS:-10000}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

echo "## queue transports ($JOBS no-op jobs, 8 producers and 8 consumers)"
echo
./target/release/examples/queue_bench postgres "$JOBS" 8 | sed 's/^/- /'
./target/release/examples/queue_bench amqp "$JOBS" 8 | sed 's/^/- /'
echo

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# a 1 GiB video: a high-bitrate 1080p clip, concatenated without re-encoding
SIZE_MB=${BENCH_UPLOAD_MB:-1024}
ffmpeg -hide_banner -nostdin -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=10" \
  -c:v libx264 -preset ultrafast -b:v 80M -maxrate 80M -bufsize 160M -pix_fmt yuv420p "$WORK/part.mp4"
PART=$(stat -c %s "$WORK/part.mp4")
COPIES=$(( (SIZE_MB * 1048576 + PART - 1) / PART ))
for _ in $(seq "$COPIES"); do echo "file '$WORK/part.mp4'"; done > "$WORK/list.txt"
ffmpeg -hide_banner -nostdin -v error -y -f concat -safe 0 -i "$WORK/list.txt" -c copy "$WORK/big.mp4"
BIG=$(stat -c %s "$WORK/big.mp4")

# S3 (moto), a fresh database, one API process, nginx in front
S3_PORT=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$S3_PORT/" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs -X PUT "http://127.0.0.1:$S3_PORT/vidsight-bench" >/dev/null
DB="vs_bench_$(date +%s)_$$"
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $DB" >/dev/null
API_PORT=$(free_port)
GATEWAY_PORT=$(free_port)
VIDSIGHT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
VIDSIGHT_STORAGE_URL="s3://vidsight-bench/objects" \
VIDSIGHT_S3__ENDPOINT="http://127.0.0.1:$S3_PORT" VIDSIGHT_S3__ACCESS_KEY_ID=bench VIDSIGHT_S3__SECRET_ACCESS_KEY=bench \
VIDSIGHT_LOG__LEVEL=warn VIDSIGHT_AUTH__GATEWAY_SECRET="bench-gateway-secret-$$" \
  "$BIN" serve --roles api --addr "127.0.0.1:$API_PORT" --data-dir "$WORK/data" >/dev/null 2>"$WORK/api.err" &
API_PID=$!
PIDS+=($API_PID)
mkdir -p "$WORK/nginx" "$WORK/web"
sed -e "s|__USER__|root|" -e "s|__PREFIX__|$WORK/nginx|g" -e "s|__LISTEN__|127.0.0.1:$GATEWAY_PORT|" \
    -e "s|__UPSTREAMS__|server 127.0.0.1:$API_PORT;|" -e "s|__WEB_ROOT__|$WORK/web|g" -e "s|__MAX_BODY__|2g|" -e "s|__GATEWAY_SECRET__|bench-gateway-secret-$$|" \
    deploy/nginx/vidsight.conf.template > "$WORK/nginx.conf"
nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" -g "daemon off;" &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$GATEWAY_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
CREDENTIALS='{"email":"bench@example.com","password":"a long benchmark passphrase"}'
curl -fs -o /dev/null -H 'content-type: application/json' -d "$CREDENTIALS" "http://127.0.0.1:$API_PORT/api/v1/auth/register"
TOKEN=$(curl -fs -H 'content-type: application/json' -d "$CREDENTIALS" "http://127.0.0.1:$API_PORT/api/v1/auth/login" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

upload() { # url → seconds
  local start end
  start=$(now)
  curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" -F "file=@$WORK/big.mp4;type=video/mp4" "$1/api/v1/videos"
  end=$(now)
  echo "$end - $start" | bc -l
}
DIRECT=$(upload "http://127.0.0.1:$API_PORT")
VIA_NGINX=$(upload "http://127.0.0.1:$GATEWAY_PORT")
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$API_PID/status")
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1 || true

mbps() { echo "scale=1; $BIG / $1 / 1048576" | bc -l; }
echo "## a $(( BIG / 1048576 )) MiB upload into S3 storage (moto), validated and stored"
echo
echo "| path | seconds | MiB/s |"
echo "|---|---|---|"
printf '| curl → API | %.2f | %s |\n' "$DIRECT" "$(mbps "$DIRECT")"
printf '| curl → nginx → API | %.2f | %s |\n' "$VIA_NGINX" "$(mbps "$VIA_NGINX")"
echo
echo "- nginx / direct time ratio: $(echo "scale=2; $VIA_NGINX / $DIRECT" | bc -l)"
echo "- API peak RSS over both uploads: $(( RSS_KB / 1024 )) MiB (target: under 100 MiB)"
