#!/usr/bin/env bash
# Fuzzes what vidsight reads of untrusted uploads with code of its own, with cargo-fuzz
# (libFuzzer): the MP4 index reader (crates/vidsight-media/src/mp4index.rs, target
# mp4_index), the reading of ffprobe's JSON, whose strings and numbers come from the file
# (probe.rs, target probe_report), of subtitle tracks as WebVTT (captions.rs, webvtt) and of
# ffmpeg's log, which echoes the file's metadata (logparse.rs, ffmpeg_log). Needs a nightly toolchain (`rustup toolchain install
# nightly`); not part of `make test`, whose `mutated_indexes_are_read_without_panicking`
# covers the index reader's entry point on stable.
#
#   make fuzz                          # every target, FUZZ_SECONDS=300 each by default
#   FUZZ_SECONDS=3600 make fuzz
#   scripts/fuzz.sh webvtt ffmpeg_log  # some of them
#
# Seeds: the index of every MP4/MOV in ../shared/media and of files made here with ffmpeg
# (B-frames, edit lists, HEVC, MPEG-4 Part 2, sound, fragments), each as the `moov` box's
# content and as a file without its media data; ffprobe's JSON of the same files; the
# subtitles of the shared MKV as WebVTT, and the log of an analysis pass over a made file
# with sound. A crash is saved under fuzz/artifacts/TARGET/.
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
captions=fuzz/corpus/webvtt
logs=fuzz/corpus/ffmpeg_log
mkdir -p "$corpus" "$probes" "$captions" "$logs"
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
mkv=../shared/media/issue-236-split-copy.mkv
if [ -e "$mkv" ]; then
    for stream in 0 1 2; do
        ffmpeg -v error -y -i "$mkv" -map "0:s:$stream" -f webvtt "$captions/track$stream.vtt" || true
    done
fi
printf 'WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello\n\n01:02.000 --> 01:03.000\n<i>two</i>\n' \
    > "$captions/made.vtt"
ffmpeg -hide_banner -nostdin -loglevel info -i "$made/bframes.mp4" \
    -filter_complex "[0:v:0]showinfo=checksum=0,nullsink" \
    -map 0:a:0 -af "silencedetect=noise=-50dB:duration=0.5,ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.M" \
    -f null - 2> "$logs/pass.log" || true
# TARGET…: those only (all four by default)
if [ "$#" -eq 0 ]; then
    set -- mp4_index probe_report webvtt ffmpeg_log
fi
for target in "$@"; do
    case "$target" in
        mp4_index) longest=262144 ;;
        probe_report | webvtt) longest=65536 ;;
        ffmpeg_log) longest=262144 ;;
        *) echo "fuzz: no target $target" >&2; exit 1 ;;
    esac
    cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$longest" -rss_limit_mb=2048 -timeout=10
done
