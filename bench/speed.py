#!/usr/bin/env python3
"""Analysis speed: vidsight against the physical limit and against PySceneDetect, same files,
same run.

    python3 bench/speed.py [--minutes 1,10] [--sizes 720,1080] [--vidsight target/release/vidsight]

For each size and length an H.264 input (B-frames, AAC audio) is made from real footage (the
shared clips and the accuracy corpus, looped) and timed three ways, each the median of
--runs runs, with peak RSS (vidsight twice: with OCR, and without, as the target is stated):
  decode       ffmpeg -i FILE -f null -        (every frame and the audio decoded: the limit
                                                a full-decode analyzer cannot beat)
  vidsight     vidsight analyze FILE           (shots, transitions, keyframes, black, freeze,
                                                silence, loudness, captions, OCR; then again
                                                with VIDSIGHT_ANALYSIS__OCR_LANGUAGES= )
  pyscenedetect  scenedetect -i FILE detect-adaptive (its defaults; the virtualenv of
                                                bench/accuracy.py)
Ratios are against decode. Inputs are cached under --work.

Then, unless --no-short, where the analysis stops being slower than the decode: the real clips
of ../shared/media and generated 720p H.264 clips of --short-seconds (with B-frames as above,
and with none, every frame an anchor), each timed as `ffmpeg -i FILE -f null -` and as
`vidsight analyze FILE` without OCR (and PySceneDetect's detect-adaptive) in turn,
--short-rounds rounds (medians; a drift in the machine's speed hits all alike), with the first
length from which the analysis is the faster.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ab  # noqa: E402  (the interleaved runs)

ROOT = Path(__file__).resolve().parent.parent


def timed(command, env=None):
    """Wall seconds and peak RSS (MiB) of one run."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    rss_kib = int(result.stderr.strip().splitlines()[-1])
    return elapsed, rss_kib / 1024


def median_run(command, runs, env=None):
    samples = [timed(command, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def make_input(work, media, height, minutes):
    return make_clip(work, media, height, minutes * 60, 3)


def make_clip(work, media, height, seconds, b_frames):
    """`seconds` of real footage at `height`p, H.264 with up to `b_frames` B-frames in a row,
    with a tone (AAC)."""
    width = height * 16 // 9
    if seconds % 60 == 0 and b_frames == 3:
        out = work / f"speed-{height}p-{seconds // 60}min.mp4"
    else:
        out = work / f"speed-{height}p-{seconds}s-bf{b_frames}.mp4"
    if out.exists():
        return out
    # a ~20 s mix of real footage with cuts, looped to length, with a tone
    sources = [media / name for name in ["bikes.mp4", "bigbuckbunny.mp4", "goldeneye-vfr-drop3.mp4", "testvideo.mp4"] if (media / name).exists()]
    base = work / f"speed-base-{height}.mp4"
    if not base.exists():
        inputs, chains = [], []
        for number, source in enumerate(sources):
            inputs += ["-t", "6", "-i", str(source)]
            chains.append(f"[{number}:v]fps=30,scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1,format=yuv420p[v{number}]")
        joined = "".join(f"[v{n}]" for n in range(len(sources)))
        chains.append(f"{joined}concat=n={len(sources)}:v=1:a=0[v]")
        subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-y"] + inputs + ["-filter_complex", ";".join(chains), "-map", "[v]", "-c:v", "libx264", "-preset", "superfast", "-crf", "20", str(base)], check=True)
    subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base),
                    "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds}",
                    "-t", str(seconds), "-map", "0:v", "-map", "1:a",
                    "-c:v", "libx264", "-preset", "superfast", "-bf", str(b_frames), "-crf", "20", "-c:a", "aac", "-b:a", "96k", str(out)], check=True)
    return out


def duration_of(clip):
    shown = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(clip)],
                           capture_output=True, text=True, check=True).stdout.strip()
    return float(shown)


def short_clips(args, work, media, scenedetect):
    """The real clips and generated short ones, each against its plain decode (and
    PySceneDetect's detect-adaptive, where `scenedetect` is given)."""
    no_ocr = {"VIDSIGHT_ANALYSIS__OCR_LANGUAGES": ""}
    rows = []
    real = sorted(path for path in media.iterdir() if path.suffix in (".mp4", ".mkv", ".mov", ".avi", ".webm"))
    generated = [(make_clip(work, media, 720, seconds, b_frames), seconds, b_frames)
                 for b_frames in (3, 0) for seconds in [int(value) for value in args.short_seconds.split(",")]]
    for clip, seconds, b_frames in [(path, None, None) for path in real] + generated:
        commands = [
            ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(clip), "-f", "null", "-"],
            [args.vidsight, "analyze", str(clip)],
        ]
        if scenedetect:
            commands.append([str(scenedetect), "-q", "-i", str(clip), "-o", str(work / "scenedetect-out"), "detect-adaptive"])
        wall, _ = ab.interleaved(commands, args.short_rounds, [no_ocr] * len(commands))
        decode, ours, *theirs = [statistics.median(runs) for runs in wall]
        theirs = theirs[0] if theirs else None
        label = clip.name if seconds is None else f"720p H.264, {seconds} s, " + ("B-frames" if b_frames else "no B-frames")
        rows.append((label, duration_of(clip), decode, ours, theirs, seconds, b_frames))
        print(json.dumps({"input": label, "decode_s": round(decode, 3), "vidsight_no_ocr_s": round(ours, 3),
                          "pyscenedetect_s": theirs and round(theirs, 3)}), file=sys.stderr)
    print()
    print("| input | length | decode (ffmpeg -f null) | vidsight analyze, without OCR | ratio to decode | PySceneDetect detect-adaptive | ratio to decode |")
    print("|---|---|---|---|---|---|---|")
    for label, length, decode, ours, theirs, _, _ in rows:
        their_cells = f"{theirs:.3f} s | {theirs / decode:.2f}×" if theirs else "— | —"
        print(f"| {label} | {length:.1f} s | {decode:.3f} s | {ours:.3f} s | {ours / decode:.2f}× | {their_cells} |")
    for b_frames, kind in ((3, "with B-frames"), (0, "without B-frames")):
        faster = [seconds for _, _, decode, ours, _, seconds, made in rows if made == b_frames and ours < decode]
        slower = [seconds for _, _, decode, ours, _, seconds, made in rows if made == b_frames and ours >= decode]
        # the first length from which every longer one is faster too
        start = min((s for s in faster if all(t < s for t in slower)), default=None)
        print(f"\ngenerated 720p H.264 {kind}: the analysis is faster than the decode "
              + (f"from {start} s on" if start is not None else "at none of the lengths tried"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vidsight", default=str(ROOT / "target/release/vidsight"))
    parser.add_argument("--media", default=str(ROOT.parent / "shared/media"))
    parser.add_argument("--work", default=str(ROOT / "target/bench-speed"))
    parser.add_argument("--minutes", default="1,10")
    parser.add_argument("--sizes", default="720,1080")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-pyscenedetect", action="store_true")
    parser.add_argument("--no-short", action="store_true")
    parser.add_argument("--short-seconds", default="2,5,10,20,40")
    parser.add_argument("--short-rounds", type=int, default=7)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    media = Path(args.media)
    if not media.exists():
        raise SystemExit(f"the shared clips are not at {media}")
    scenedetect = ROOT / "target/bench-accuracy/pyscenedetect-venv/bin/scenedetect"
    if not args.no_pyscenedetect and not scenedetect.exists():
        import accuracy  # noqa: E402  (installs the virtualenv)
        accuracy.pyscenedetect_python(ROOT / "target/bench-accuracy")

    rows = []
    for height in [int(value) for value in args.sizes.split(",") if value]:
        for minutes in [int(value) for value in args.minutes.split(",") if value]:
            clip = make_input(work, media, height, minutes)
            runs = args.runs if minutes < 10 else 1
            decode = median_run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(clip), "-f", "null", "-"], runs)
            ours = median_run([args.vidsight, "analyze", str(clip)], runs)
            # the speed target is stated without OCR (Tesseract's cost is per shot, not per frame)
            no_ocr = median_run([args.vidsight, "analyze", str(clip)], runs, {"VIDSIGHT_ANALYSIS__OCR_LANGUAGES": ""})
            theirs = None
            if not args.no_pyscenedetect:
                out = work / "scenedetect-out"
                theirs = median_run([str(scenedetect), "-q", "-i", str(clip), "-o", str(out), "detect-adaptive"], runs)
            rows.append((height, minutes, decode, ours, no_ocr, theirs))
            print(json.dumps({"size": f"{height}p", "minutes": minutes, "decode_s": round(decode[0], 2), "vidsight_s": round(ours[0], 2),
                              "vidsight_no_ocr_s": round(no_ocr[0], 2),
                              "vidsight_rss_mib": round(ours[1]), "pyscenedetect_s": theirs and round(theirs[0], 2)}), file=sys.stderr)

    if rows:
        print()
        print("| input | decode (ffmpeg -f null) | vidsight analyze | without OCR | ratio to decode (without OCR) | peak RSS | PySceneDetect detect-adaptive | ratio to decode | speed-up over PySceneDetect (without OCR) |")
        print("|---|---|---|---|---|---|---|---|---|")
    for height, minutes, decode, ours, no_ocr, theirs in rows:
        their_cells = f"{theirs[0]:.1f} s | {theirs[0] / decode[0]:.2f}× | {theirs[0] / no_ocr[0]:.2f}×" if theirs else "— | — | —"
        print(f"| {height}p, {minutes} min | {decode[0]:.1f} s | {ours[0]:.1f} s | {no_ocr[0]:.1f} s | {no_ocr[0] / decode[0]:.2f}× | {max(ours[1], no_ocr[1]):.0f} MiB | {their_cells} |")
    if not args.no_short:
        short_clips(args, work, media, None if args.no_pyscenedetect else scenedetect)


if __name__ == "__main__":
    main()
