#!/usr/bin/env python3
"""Do two builds analyse files alike? The insights documents and every image they write.

    python3 bench/compare.py BIN_A BIN_B FILE [FILE ...]

Runs `BIN analyze --json --out DIR FILE` with each build (no OCR, logs off) and compares the
JSON documents recursively (floats within TOL, default 2.1e-6, about a part's clock printed to
six decimals) and the keyframes, thumbnails and storyboard sheets byte for byte; where JPEG
bytes differ and Pillow and numpy are installed, the largest and the mean pixel difference
are printed too. A build may be a script, e.g. one running the other under
`qemu-x86_64 -cpu Nehalem` (a processor without AVX2). Exits 1 when a document differs.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOL = float(os.environ.get("TOL", "2.1e-6"))


def analyse(binary, file, out):
    env = {**os.environ, "VIDSIGHT_LOG__LEVEL": "error", "VIDSIGHT_ANALYSIS__OCR_LANGUAGES": ""}
    run = subprocess.run([binary, "analyze", "--json", "--out", out, file],
                         env=env, capture_output=True, text=True)
    if run.returncode:
        print(f"{binary} failed on {file}: {run.stderr[-500:]}")
        return None
    return json.loads(run.stdout)


def differences(a, b, path, found):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                found.append(f"{path}.{key}: on one side only")
            else:
                differences(a[key], b[key], f"{path}.{key}", found)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            found.append(f"{path}: {len(a)} items against {len(b)}")
        for at, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{path}[{at}]", found)
    elif isinstance(a, float) or isinstance(b, float):
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if not (numbers and abs(a - b) <= TOL):
            found.append(f"{path}: {a!r} against {b!r}")
    elif a != b:
        found.append(f"{path}: {a!r} against {b!r}")


def pixel_difference(left, right):
    try:
        import numpy
        from PIL import Image
    except ImportError:
        return None
    x = numpy.asarray(Image.open(left).convert("RGB"), dtype=int)
    y = numpy.asarray(Image.open(right).convert("RGB"), dtype=int)
    if x.shape != y.shape:
        return None
    difference = numpy.abs(x - y)
    return int(difference.max()), float(difference.mean())


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    first, second, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    failed = False
    for file in files:
        left, right = tempfile.mkdtemp(), tempfile.mkdtemp()
        try:
            a, b = analyse(first, file, left), analyse(second, file, right)
            if a is None or b is None:
                failed = True
                continue
            found = []
            differences(a, b, "", found)
            same, changed, worst, mean = 0, 0, 0, 0.0
            for image in sorted(Path(left).rglob("*.jpg")):
                other = Path(right) / image.relative_to(left)
                if not other.exists():
                    found.append(f"{image.relative_to(left)}: written by the first build only")
                elif image.read_bytes() == other.read_bytes():
                    same += 1
                else:
                    changed += 1
                    measured = pixel_difference(image, other)
                    if measured:
                        worst, mean = max(worst, measured[0]), max(mean, measured[1])
            pixels = f" (largest pixel difference {worst}, mean {mean:.3f})" if changed else ""
            verdict = "the same document" if not found else f"{len(found)} differences"
            print(f"{Path(file).name}: {verdict}; images {same} the same, {changed} not{pixels}")
            for line in found[:10]:
                print("   ", line)
            failed |= bool(found)
        finally:
            shutil.rmtree(left)
            shutil.rmtree(right)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
