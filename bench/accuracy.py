#!/usr/bin/env python3
"""Shot-boundary accuracy: vidsight against PySceneDetect, on the same files, in one run.

    python3 bench/accuracy.py [--vidsight target/release/vidsight] [--media ../shared/media]
                              [--work target/bench-accuracy] [--no-pyscenedetect]

Corpus (a) is generated here with ffmpeg, with its ground truth: hard cuts, cross dissolves,
fades through black and white, with flash, fast-pan and shake distractors (no boundary), in
several resolutions, frame rates and codecs, one variable-frame-rate file, one rotated and one
letterboxed. Corpus (b) is the real clips in ../shared/media whose README states the truth.

Scoring follows TRECVID shot-boundary detection: every detection and every truth is an interval
(a cut is a point); a detection matches a truth when they overlap once widened by one frame,
matched greedily one-to-one, nearest first. A matched truth counts for its own kind (cut or
gradual); an unmatched detection is a false positive of the kind its length says (up to 5
frames: cut). PySceneDetect reports points only, so its detections are cuts.

PySceneDetect (scenedetect + opencv-python-headless) is installed into a virtualenv under the
work folder on first use; detect-adaptive and detect-content run with their defaults.

The seconds column is for orientation, not a speed comparison (bench/speed.py is that):
vidsight's is the whole `analyze` process (start, probe, the sound, keyframes; OCR off, as it
has no bearing on boundaries), PySceneDetect's only its `detect` call, timed inside Python.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# --- the synthetic corpus -------------------------------------------------------------------

# one-shot sources: (name, input args, filter to apply before scaling); footage from the shared
# clips that holds a single shot, and lavfi patterns that look nothing alike
def sources(media):
    real = [
        ("bunny", ["-ss", "0", "-t", "5.2", "-i", str(media / "bigbuckbunny.mp4")]),
        ("carphone", ["-t", "3.9", "-i", str(media / "carphone_pristine.mp4")]),
        ("goldeneye1", ["-ss", "0.2", "-t", "3.4", "-i", str(media / "goldeneye-vfr-drop3.mp4")]),
        ("goldeneye2", ["-ss", "4.0", "-t", "4.5", "-i", str(media / "goldeneye-vfr-drop3.mp4")]),
    ]
    synthetic = [
        ("testsrc2", ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"]),
        ("mandelbrot", ["-f", "lavfi", "-i", "mandelbrot=size=640x360:rate=30"]),
        ("life", ["-f", "lavfi", "-i", "life=size=320x180:rate=30:mold=10:ratio=0.2:seed=3:death_color=#203040:life_color=#e0c080"]),
        ("gradients", ["-f", "lavfi", "-i", "gradients=size=640x360:rate=30:speed=0.05:seed=3"]),
        ("cellauto", ["-f", "lavfi", "-i", "cellauto=size=640x360:rate=30:rule=110:seed=3"]),
    ]
    return [item for item in real if Path(item[1][-1]).exists() or item[1][0] == "-f"] + synthetic


# segment effects: distractors that must not be detected
EFFECTS = {
    "plain": "",
    # two frames of near-white, as a camera flash
    "flash": ",drawbox=color=white@0.92:t=fill:enable='between(n,40,41)'",
    # a fast pan over the picture, zoomed in twice
    "pan": ",scale=2*iw:2*ih,crop=iw/2:ih/2:'(iw/2)*(0.5+0.5*sin(t*5))':'(ih/2)*0.5'",
    # a hand-held shake
    "shake": ",scale=1.2*iw:1.2*ih,crop=iw/1.2:ih/1.2:'iw*0.083+iw*0.07*sin(t*37)':'ih*0.083+ih*0.07*cos(t*29)'",
}

# each corpus file: size, rate, codec args, and the sequence of (source index, seconds, effect)
# joined by transitions: "cut", or (xfade kind, seconds)
CORPUS = [
    {"name": "cuts-720p25-h264", "size": (1280, 720), "rate": 25, "codec": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
     "plan": [(0, 2.4, "plain"), "cut", (4, 2.0, "plain"), "cut", (1, 2.8, "flash"), "cut", (5, 1.6, "plain"), "cut", (2, 2.0, "plain"), "cut", (6, 2.2, "pan"), "cut", (3, 2.6, "plain"), "cut", (7, 1.2, "plain"), "cut", (0, 2.0, "shake"), "cut", (8, 1.8, "plain")]},
    {"name": "dissolves-720p25-h264", "size": (1280, 720), "rate": 25, "codec": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
     "plan": [(0, 3.0, "plain"), ("fade", 1.0), (1, 3.0, "plain"), ("fade", 0.6), (2, 3.0, "plain"), ("fade", 1.6), (4, 3.0, "plain"), "cut", (3, 3.0, "plain"), ("fade", 1.2), (5, 3.0, "plain")]},
    {"name": "fades-1080p30-h264", "size": (1920, 1080), "rate": 30, "codec": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
     "plan": [(3, 3.0, "plain"), ("fadeblack", 1.6), (0, 3.0, "flash"), ("fadewhite", 1.2), (1, 3.0, "plain"), "cut", (4, 2.0, "plain"), ("fadeblack", 2.0), (2, 3.0, "plain")]},
    {"name": "mixed-480p24-hevc", "size": (854, 480), "rate": 24, "codec": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
     "plan": [(2, 2.5, "plain"), "cut", (0, 2.5, "pan"), ("fade", 1.0), (6, 2.5, "plain"), "cut", (1, 2.5, "shake"), ("fadeblack", 1.2), (3, 2.5, "plain"), "cut", (5, 2.0, "plain")]},
    {"name": "mixed-360p30-vp9", "size": (640, 360), "rate": 30, "codec": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"],
     "plan": [(1, 2.0, "plain"), "cut", (7, 2.0, "plain"), ("fade", 0.8), (0, 2.4, "flash"), "cut", (3, 2.0, "plain"), ("fadewhite", 1.0), (4, 2.0, "plain")]},
    {"name": "mixed-480p25-mpeg4", "size": (640, 480), "rate": 25, "codec": ["-c:v", "mpeg4", "-q:v", "5"],
     "plan": [(3, 2.4, "plain"), "cut", (2, 2.0, "shake"), ("fade", 1.0), (1, 2.4, "plain"), "cut", (8, 2.0, "plain"), "cut", (0, 2.4, "plain")]},
    {"name": "mixed-720p25-mpeg2", "size": (1280, 720), "rate": 25, "codec": ["-c:v", "mpeg2video", "-q:v", "4", "-bf", "2", "-g", "12"],
     "plan": [(4, 2.4, "plain"), "cut", (1, 2.0, "pan"), ("fade", 0.8), (3, 2.4, "flash"), "cut", (6, 2.0, "plain"), ("fadeblack", 1.0), (0, 2.4, "shake"), "cut", (2, 2.0, "plain")]},
    {"name": "cuts-720p60-h264", "size": (1280, 720), "rate": 60, "codec": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
     "plan": [(0, 2.0, "plain"), "cut", (1, 2.0, "pan"), "cut", (2, 2.0, "plain"), ("fade", 0.5), (3, 2.0, "plain"), "cut", (4, 1.5, "flash")]},
    {"name": "vfr-720p-h264", "size": (1280, 720), "rate": 30, "vfr": True, "codec": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
     "plan": [(3, 2.0, "plain"), "cut", (0, 2.0, "plain"), "cut", (1, 2.0, "plain"), ("fade", 1.0), (2, 2.0, "plain"), "cut", (4, 2.0, "plain")]},
    {"name": "rotated-720p25-h264", "size": (1280, 720), "rate": 25, "rotate": 90, "codec": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
     "plan": [(1, 2.4, "plain"), "cut", (3, 2.4, "plain"), ("fadeblack", 1.0), (0, 2.4, "plain"), "cut", (5, 2.4, "plain")]},
    {"name": "letterboxed-720p25-h264", "size": (1280, 720), "rate": 25, "letterbox": True, "codec": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
     "plan": [(0, 2.4, "plain"), "cut", (2, 2.4, "flash"), ("fade", 1.0), (3, 2.4, "plain"), "cut", (1, 2.4, "plain")]},
]


def frames(seconds, rate):
    return round(seconds * rate)


def build(entry, srcs, out):
    """One corpus file and its truth. Durations are whole frames so the truth is exact."""
    width, height = entry["size"]
    rate = entry["rate"]
    inputs, chains, truth = [], [], []
    segments = [item for item in entry["plan"] if isinstance(item, tuple) and isinstance(item[0], int)]
    for number, (source, seconds, effect) in enumerate(segments):
        name, args = srcs[source % len(srcs)]
        inputs += args
        n = frames(seconds, rate)
        scale = f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}"
        if entry.get("letterbox"):
            inner = height * 3 // 4 // 2 * 2
            scale = f"scale={width}:{inner}:force_original_aspect_ratio=increase,crop={width}:{inner},pad={width}:{height}:0:(oh-ih)/2:black"
        chains.append(f"[{number}:v]fps={rate},{scale}{EFFECTS[effect]},scale={width}:{height},setsar=1,format=yuv420p,trim=end_frame={n},settb=1/{rate},setpts=N[s{number}]")
    # join, tracking the length (frames) of what is built so far
    label, length = "s0", frames(segments[0][1], rate)
    joins = [item for item in entry["plan"] if not (isinstance(item, tuple) and isinstance(item[0], int))]
    for number, join in enumerate(joins, start=1):
        n = frames(segments[number][1], rate)
        out_label = f"j{number}"
        if join == "cut":
            chains.append(f"[{label}][s{number}]concat=n=2:v=1:a=0,settb=1/{rate},setpts=N[{out_label}]")
            truth.append({"kind": "cut", "start": length / rate, "end": length / rate})
            length += n
        else:
            kind, seconds = join
            d = frames(seconds, rate)
            offset = length - d
            chains.append(f"[{label}][s{number}]xfade=transition={kind}:duration={d / rate}:offset={offset / rate},settb=1/{rate},setpts=N[{out_label}]")
            truth.append({"kind": "gradual", "start": offset / rate, "end": length / rate, "transition": kind})
            length = offset + n
        label = out_label
    final = f"[{label}]"
    if entry.get("vfr"):
        # every third frame dropped, timestamps kept: variable frame rate
        chains.append(f"{final}select='not(eq(mod(n\\,3)\\,2))'[v]")
        final = "[v]"
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"] + inputs
    args += ["-filter_complex", ";".join(chains), "-map", final, "-an"] + entry["codec"]
    if entry.get("vfr"):
        args += ["-fps_mode", "vfr"]
    if entry.get("rotate"):
        args += ["-metadata:s:v:0", f"rotate={entry['rotate']}"]
    args.append(str(out))
    subprocess.run(args, check=True)
    return {"file": str(out), "fps": rate, "truth": truth, "frames": length}


def real_clips(media):
    """The shared clips whose README states the truth."""
    clips = []
    golden = media / "goldeneye-vfr-drop3.mp4"
    if golden.exists():
        clips.append({"file": str(golden), "fps": 23.976, "truth": [
            {"kind": "cut", "start": 3.754, "end": 3.754}, {"kind": "cut", "start": 8.759, "end": 8.759}]})
    fades = media / "fades.mp4"
    if fades.exists():
        # fade midpoints at frames 84 and 167 (25 fps): each fade through black counts as one
        # gradual transition around its midpoint (±0.5 s)
        clips.append({"file": str(fades), "fps": 25, "truth": [
            {"kind": "gradual", "start": 84 / 25 - 0.5, "end": 84 / 25 + 0.5},
            {"kind": "gradual", "start": 167 / 25 - 0.5, "end": 167 / 25 + 0.5}]})
    # (counter.mp4 changes its background colour every second, and the README does not say
    # whether that is a shot boundary: left out)
    for one_shot in ["bigbuckbunny.mp4", "carphone_pristine.mp4"]:
        if (media / one_shot).exists():
            clips.append({"file": str(media / one_shot), "fps": 25, "truth": []})
    return clips


# --- detectors -------------------------------------------------------------------------------

def vidsight(binary, path):
    started = time.perf_counter()
    output = subprocess.run([binary, "analyze", "--json", path], check=True, capture_output=True, text=True, env={**os.environ, "VIDSIGHT_LOG__LEVEL": "error", "VIDSIGHT_ANALYSIS__OCR_LANGUAGES": ""})
    elapsed = time.perf_counter() - started
    document = json.loads(output.stdout)
    return boundaries_of(document), elapsed


def boundaries_of(document):
    """The shot boundaries (each shot's start after the first), each widened to the gradual
    transitions it belongs to: the dissolve it is in, or the fade out, black and fade in it
    sits between."""
    transitions = document["transitions"]
    cuts = {round(t["start"], 6) for t in transitions if t["kind"] == "cut"}
    detections = []
    for shot in document["shots"][1:]:
        at = shot["start"]
        start = end = at
        if round(at, 6) not in cuts:
            for t in transitions:
                inside = t["start"] - 1e-6 <= at <= t["end"] + 1e-6
                fade_before = t["kind"] == "fade_out" and 0 <= at - t["end"] <= 2.0
                fade_after = t["kind"] == "fade_in" and 0 <= t["start"] - at <= 2.0
                if t["kind"] != "cut" and (inside or fade_before or fade_after):
                    start, end = min(start, t["start"]), max(end, t["end"])
        detections.append({"start": start, "end": end, "kind": "cut" if start == end else "gradual"})
    return detections


PYSCENEDETECT_RUNNER = r"""
import json, sys, time
from scenedetect import detect, AdaptiveDetector, ContentDetector
detector = {"adaptive": AdaptiveDetector, "content": ContentDetector}[sys.argv[1]]()
started = time.perf_counter()
scenes = detect(sys.argv[2], detector)
elapsed = time.perf_counter() - started
print(json.dumps({"cuts": [scene[0].get_seconds() for scene in scenes[1:]], "seconds": elapsed}))
"""


def pyscenedetect_python(work):
    venv = work / "pyscenedetect-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print("installing PySceneDetect into", venv, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "scenedetect==0.6.7", "opencv-python-headless"], check=True)
    return str(python)


def pyscenedetect(python, which, path):
    # cached per file and detector (the files do not change between runs)
    cache = Path(path).with_suffix(f".pyscenedetect-{which}.json") if "bench-accuracy" in path else None
    if cache and cache.exists() and cache.stat().st_mtime > Path(path).stat().st_mtime:
        result = json.loads(cache.read_text())
    else:
        output = subprocess.run([python, "-c", PYSCENEDETECT_RUNNER, which, path], check=True, capture_output=True, text=True)
        result = json.loads(output.stdout.strip().splitlines()[-1])
        if cache:
            cache.write_text(json.dumps(result))
    return [{"start": t, "end": t, "kind": "cut"} for t in result["cuts"]], result["seconds"]


# --- scoring ----------------------------------------------------------------------------------

def score(truth, detections, fps):
    """TP/FP/FN per kind (cut, gradual) under the rules in the module's docstring."""
    tolerance = 1.0 / fps + 1e-3
    pairs = []
    for t_index, t in enumerate(truth):
        for d_index, d in enumerate(detections):
            if d["start"] - tolerance <= t["end"] and t["start"] <= d["end"] + tolerance:
                distance = abs((d["start"] + d["end"]) / 2 - (t["start"] + t["end"]) / 2)
                pairs.append((distance, t_index, d_index))
    pairs.sort()
    used_t, used_d = set(), set()
    counts = {"cut": [0, 0, 0], "gradual": [0, 0, 0]}  # tp, fp, fn
    for _, t_index, d_index in pairs:
        if t_index in used_t or d_index in used_d:
            continue
        used_t.add(t_index)
        used_d.add(d_index)
        counts[truth[t_index]["kind"]][0] += 1
    for d_index, d in enumerate(detections):
        if d_index not in used_d:
            kind = "cut" if (d["end"] - d["start"]) <= 5.0 / fps else "gradual"
            counts[kind][1] += 1
    for t_index, t in enumerate(truth):
        if t_index not in used_t:
            counts[t["kind"]][2] += 1
    return counts


def prf(tp, fp, fn):
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vidsight", default=str(ROOT / "target/release/vidsight"))
    parser.add_argument("--media", default=str(ROOT.parent / "shared/media"))
    parser.add_argument("--work", default=str(ROOT / "target/bench-accuracy"))
    parser.add_argument("--no-pyscenedetect", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every file's detections")
    args = parser.parse_args()
    media, work = Path(args.media), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not media.exists():
        print(f"the shared clips are not at {media}: corpus (a) uses lavfi sources only, corpus (b) is skipped", file=sys.stderr)
    srcs = sources(media)

    corpora = {"synthetic": [], "real": real_clips(media) if media.exists() else []}
    for entry in CORPUS:
        extension = "webm" if "vp9" in entry["name"] else "mkv" if "mpeg4" in entry["name"] else "ts" if "mpeg2" in entry["name"] else "mp4"
        out = work / f"{entry['name']}.{extension}"
        truth_file = out.with_suffix(".truth.json")
        if not (out.exists() and truth_file.exists()):
            truth_file.write_text(json.dumps(build(entry, srcs, out)))
        corpora["synthetic"].append(json.loads(truth_file.read_text()))

    detectors = [("vidsight", lambda path: vidsight(args.vidsight, path))]
    if not args.no_pyscenedetect:
        python = pyscenedetect_python(work)
        detectors += [
            ("pyscenedetect detect-adaptive", lambda path: pyscenedetect(python, "adaptive", path)),
            ("pyscenedetect detect-content", lambda path: pyscenedetect(python, "content", path)),
        ]

    results = {}
    for corpus, files in corpora.items():
        for name, run in detectors:
            totals = {"cut": [0, 0, 0], "gradual": [0, 0, 0]}
            seconds = 0.0
            for item in files:
                detections, elapsed = run(item["file"])
                seconds += elapsed
                counts = score(item["truth"], detections, item["fps"])
                for kind in totals:
                    for i in range(3):
                        totals[kind][i] += counts[kind][i]
                if args.verbose:
                    print(f"  {name:32} {Path(item['file']).name:32} {counts}  found {[(round(d['start'], 3), round(d['end'], 3), d['kind']) for d in detections]}")
            results[(corpus, name)] = (totals, seconds)

    print()
    print(f"{'corpus':10} {'detector':32} {'cuts P':>7} {'R':>6} {'F1':>6}   {'gradual P':>9} {'R':>6} {'F1':>6}   {'seconds':>8}")
    for (corpus, name), (totals, seconds) in results.items():
        cp, cr, cf = prf(*totals["cut"])
        gp, gr, gf = prf(*totals["gradual"])
        print(f"{corpus:10} {name:32} {cp*100:7.1f} {cr*100:6.1f} {cf*100:6.1f}   {gp*100:9.1f} {gr*100:6.1f} {gf*100:6.1f}   {seconds:8.2f}")
    print()
    print("cuts: 1-frame tolerance; gradual: a boundary inside the transition counts. "
          f"synthetic: {len(corpora['synthetic'])} files, "
          f"{sum(len([t for t in f['truth'] if t['kind'] == 'cut']) for f in corpora['synthetic'])} cuts, "
          f"{sum(len([t for t in f['truth'] if t['kind'] == 'gradual']) for f in corpora['synthetic'])} gradual; "
          f"real: {len(corpora['real'])} files.")


if __name__ == "__main__":
    main()
