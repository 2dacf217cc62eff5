#!/usr/bin/env bash
# Benchmarks, each side by side with its physical limit in the same run, as ratios.
#   1. analysis: `vidsight analyze` vs ffmpeg decoding the same file to nothing (decoding
#      is work any analyzer must do; the ratio is our overhead on top of it)
#   2. upload: `curl` POST to a running server vs `cp` of the same file on the same disk,
#      and the server's peak RSS during the upload
#   3. argon2id: the cost of one password hash at the configured parameters and around them
#   4. authentication per request: /healthz vs an authenticated read (JWT, API key)
# Prints a Markdown table for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/vidsight
[ -x "$BIN" ] || cargo build --release --locked --bin vidsight
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
SERVER=

SECONDS_OF_VIDEO=${BENCH_SECONDS:-60}
CLIP="$WORK/bench-1080p.mp4"
echo "generating ${SECONDS_OF_VIDEO}s of 1080p30 H.264 + AAC ..." >&2
ffmpeg -hide_banner -nostdin -v error -y \
  -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=${SECONDS_OF_VIDEO}" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${SECONDS_OF_VIDEO}" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$CLIP"
SIZE=$(stat -c %s "$CLIP")

now() { date +%s.%N; }
# median of three runs of a command, in seconds
median3() {
  local times=()
  for _ in 1 2 3; do
    local start end
    start=$(now); "$@" >/dev/null 2>&1; end=$(now)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p
}

DECODE=$(median3 ffmpeg -hide_banner -nostdin -v error -i "$CLIP" -map 0:v:0 -map 0:a:0 -f null -)
ANALYZE=$(median3 "$BIN" analyze "$CLIP")

# upload: a server on a fresh data dir
DATA="$WORK/data"
PORT=$((20000 + RANDOM % 20000))
"$BIN" serve --roles api --addr 127.0.0.1:$PORT --data-dir "$DATA" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
# sign up and in (the first account)
CREDENTIALS='{"email":"bench@example.com","password":"a long benchmark passphrase"}'
curl -fs -o /dev/null -H 'content-type: application/json' -d "$CREDENTIALS" "http://127.0.0.1:$PORT/api/v1/auth/register"
TOKEN=$(curl -fs -H 'content-type: application/json' -d "$CREDENTIALS" "http://127.0.0.1:$PORT/api/v1/auth/login" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
COPY=$(median3 cp "$CLIP" "$WORK/copy.mp4")
UPLOAD=$(median3 curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" -F "file=@$CLIP;type=video/mp4" "http://127.0.0.1:$PORT/api/v1/videos")
RSS_KB=$(awk '/VmHWM/ {print $2}' /proc/$SERVER/status)

ratio() { echo "scale=2; $1 / $2" | bc -l; }
mbps() { echo "scale=1; $SIZE / $1 / 1048576" | bc -l; }
cat <<TABLE
| measure | vidsight | limit (same run) | ratio |
|---|---|---|---|
| analysis of ${SECONDS_OF_VIDEO} s 1080p30 ($(echo "scale=1; $SIZE/1048576" | bc) MiB) | $(printf '%.2f' "$ANALYZE") s ($(echo "scale=1; $SECONDS_OF_VIDEO / $ANALYZE" | bc)x real time) | ffmpeg decode only: $(printf '%.2f' "$DECODE") s | $(ratio "$ANALYZE" "$DECODE") |
| upload (validate + store) | $(mbps "$UPLOAD") MiB/s | cp on the same disk: $(mbps "$COPY") MiB/s | $(ratio "$UPLOAD" "$COPY") (time) |
| API peak RSS during uploads | $((RSS_KB / 1024)) MiB | file size $((SIZE / 1048576)) MiB | |
TABLE
echo
cargo build --release --locked -p vidsight-auth --example argon2_cost -p vidsight --example auth_bench >&2
./target/release/examples/argon2_cost
echo
./target/release/examples/auth_bench "${BENCH_REQUESTS:-20000}"
