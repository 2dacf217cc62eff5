#!/usr/bin/env python3
"""Interleaved A/B timing of `vidsight analyze` under several configurations, same file.

    python3 bench/ab.py FILE ROUNDS CONFIG [CONFIG ...]

A CONFIG is `;`-separated `NAME=VALUE` environment settings (e.g.
`VIDSIGHT_ANALYSIS__DECODERS=1`), `BIN=path` to time another build, or `PLAIN=1` for
`ffmpeg -i FILE -f null -` (the plain decode). Each round runs every configuration once, in
turn, so drift in the machine's speed hits all of them alike; the median and the minimum of
the rounds are printed, and the median CPU time (user + system, the process and its children:
steadier than wall time on a busy machine, and what two cores share). OCR is off (the speed
target is stated without it).
"""
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(file, settings):
    if "PLAIN" in settings:
        return ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-"]
    return [settings.get("BIN", str(ROOT / "target/release/vidsight")), "analyze", file]


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    file, rounds, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    samples = {config: [] for config in configs}
    cpu = {config: [] for config in configs}
    for _ in range(rounds):
        for config in configs:
            settings = dict(item.split("=", 1) for item in config.split(";") if item)
            env = {**os.environ, "VIDSIGHT_ANALYSIS__OCR_LANGUAGES": "", **settings}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(command(file, settings), env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples[config].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[config].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    for config in configs:
        runs = samples[config]
        print(f"{config:50s} median {statistics.median(runs):6.2f} s  min {min(runs):6.2f} s  "
              f"cpu {statistics.median(cpu[config]):6.2f} s  {[round(run, 2) for run in runs]}")


if __name__ == "__main__":
    main()
