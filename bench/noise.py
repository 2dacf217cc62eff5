#!/usr/bin/env python3
"""False cuts in fields of noise: vidsight builds side by side on the same generated clips.

    python3 bench/noise.py [--vidsight BIN[,BIN...]] [--seeds 1-20] [--containers mp4,ts]
                           [--work target/bench-noise]

Each clip is the parts test's 40 s: eight 5-second shots joined by cuts (testsrc2, mandelbrot,
testsrc with its hue turned, and a rule-110 cellular automaton, twice over), H.264 with three
B-frames and a keyframe at least every 2 s. The automaton's field is seeded: every frame
changes all over, and a change over two frames scores little more than over one (it
saturates), which a detector that weighs steps over different numbers of frames alike can take
for a cut. Printed per clip and build: cuts found that are not at a multiple of 5 s (false),
and the seven true cuts not found within a frame (missed); then the totals.
"""
import argparse
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clip(work, seed, container):
    path = work / f"noise-{seed}.{container}"
    if path.exists():
        return path
    sources = ["testsrc2=size=192x108:rate=25", "mandelbrot=size=192x108:rate=25",
               "testsrc=size=192x108:rate=25,hue=h=90", f"cellauto=size=192x108:rate=25:rule=110:seed={seed}"]
    graph = "".join(f"{sources[i % 4]},trim=duration=5,setpts=PTS-STARTPTS[v{i}];" for i in range(8))
    graph += "".join(f"[v{i}]" for i in range(8)) + "concat=n=8:v=1:a=0,format=yuv420p[out]"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[out]",
                    "-g", "50", "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", str(path)], check=True)
    return path


def cuts(binary, path):
    env = {**os.environ, "VIDSIGHT_LOG__LEVEL": "error", "VIDSIGHT_ANALYSIS__OCR_LANGUAGES": ""}
    out = subprocess.run([binary, "analyze", "--json", str(path)], capture_output=True, text=True, env=env, check=True)
    return [t["start"] for t in json.loads(out.stdout)["transitions"] if t["kind"] == "cut"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vidsight", default=str(ROOT / "target/release/vidsight"))
    parser.add_argument("--seeds", default="1-20")
    parser.add_argument("--containers", default="mp4,ts")
    parser.add_argument("--work", default=str(ROOT / "target/bench-noise"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    first, last = (int(x) for x in args.seeds.split("-"))
    binaries = args.vidsight.split(",")
    totals = {binary: [0, 0] for binary in binaries}
    tolerance = 0.04 + 0.005  # a frame at 25 fps
    for seed in range(first, last + 1):
        for container in args.containers.split(","):
            path = clip(work, seed, container)
            row = [f"seed {seed:3} {container:4}"]
            for binary in binaries:
                found = cuts(binary, path)
                false = [c for c in found if min(abs(c - 5 * k) for k in range(1, 8)) > tolerance]
                missed = sum(1 for k in range(1, 8) if not any(abs(c - 5 * k) <= tolerance for c in found))
                totals[binary][0] += len(false)
                totals[binary][1] += missed
                row.append(f"{binary}: false {len(false)} {false} missed {missed}")
            print(" | ".join(row), flush=True)
    for binary, (false, missed) in totals.items():
        print(f"{binary}: {false} false cuts, {missed} cuts missed")


if __name__ == "__main__":
    main()
