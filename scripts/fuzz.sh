#!/usr/bin/env bash
# Fuzzes what vidsight reads of untrusted uploads with code of its own, with cargo-fuzz
# (libFuzzer): the MP4 index reader (crates/vidsight-media/src/mp4index.rs, target
# mp4_index) and the reading of ffprobe's JSON, whose strings and numbers come from the file
# (probe.rs, target probe_report). Needs a nightly toolchain (`rustup toolchain install
# nightly`); not part of `make test`, whose `mutated_indexes_are_read_without_panicking`
# covers the index reader's entry point on stable.
#
#   make fuzz                    # FUZZ_SECONDS=300 a target by default
#   FUZZ_SECONDS=3600 make fuzz
#
# Seeds: the index of every MP4/MOV in ../shared/media and of files made here with ffmpeg
# (B-frames, edit lists, HEVC, MPEG-4 Part 2, sound, fragments), each as the `moov` box's
# content and as a file without its media data; ffprobe's JSON of the same files. A crash
# is saved under fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-300}"
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
corpus=fuzz/corpus/mp4_index
probes=fuzz/corpus/probe_report
mkdir -p "$corpus" "$probes"
made="$(mktemp -d)"
trap 'rm -rf "$made"' EXIT
lavfi=(-f lavfi -i testsrc2=size=160x120:rate=25:duration=2)
sound=(-f lavfi -i sine=duration=2)
ffmpeg -v error -y "${lavfi[@]}" "${sound[@]}" -c:v libx264 -bf 3 -c:a aac -shortest "$made/bframes.mp4"
ffmpeg -v error -y -ss 0.3 -i "$made/bframes.mp4" -c copy "$made/edit.mp4"
ffmpeg -v error -y "${lavfi[@]}" -c:v libx265 -x265-params log-level=none "$made/hevc.mp4"
ffmpeg -v error -y "${lavfi[@]}" -c:v mpeg4 -bf 2 "$made/mpeg4.mov"
ffmpeg -v error -y "${lavfi[@]}" -c:v libx264 -movflags +frag_keyframe+empty_moov "$made/fragmented.mp4"
python3 - "$corpus" "$made"/* ../shared/media/*.mp4 <<'PY'
import struct, sys, pathlib
corpus = pathlib.Path(sys.argv[1])
for name in sys.argv[2:]:
    data = pathlib.Path(name).read_bytes()
    at, kept = 0, []
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
        if size == 0:
            size = len(data) - at
        if size < 8:
            break
        if kind == b"moov":
            (corpus / (pathlib.Path(name).stem + ".moov")).write_bytes(data[at + 8:at + size])
        if kind != b"mdat":
            kept.append(data[at:at + size])
        at += size
    (corpus / (pathlib.Path(name).stem + ".index")).write_bytes(b"".join(kept))
PY
for file in "$made"/* ../shared/media/*.mp4 ../shared/media/*.mkv; do
    [ -e "$file" ] || continue
    ffprobe -v error -print_format json -show_format -show_streams "$file" \
        > "$probes/$(basename "$file").json" || true
done
cargo +nightly fuzz run mp4_index "$corpus" -- \
    -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=10
cargo +nightly fuzz run probe_report "$probes" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10
