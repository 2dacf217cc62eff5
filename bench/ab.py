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


def interleaved(commands, rounds, envs):
    """Runs each of `commands` (with its environment added to this one's) in turn, `rounds`
    times: the wall seconds and the CPU seconds (user + system, the process and its children)
    of every run, command by command."""
    wall = [[] for _ in commands]
    cpu = [[] for _ in commands]
    for _ in range(rounds):
        for index, (command, env) in enumerate(zip(commands, envs)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(command, env={**os.environ, **env}, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall[index].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[index].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    file, rounds, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    settings = [dict(item.split("=", 1) for item in config.split(";") if item) for config in configs]
    wall, cpu = interleaved([command(file, each) for each in settings], rounds,
                            [{"VIDSIGHT_ANALYSIS__OCR_LANGUAGES": "", **each} for each in settings])
    for config, runs, times in zip(configs, wall, cpu):
        print(f"{config:50s} median {statistics.median(runs):6.2f} s  min {min(runs):6.2f} s  "
              f"cpu {statistics.median(times):6.2f} s  {[round(run, 2) for run in runs]}")


if __name__ == "__main__":
    main()
