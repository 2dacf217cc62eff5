// Small formatting helpers (unit-tested).

/** `83.4` → `1:23`; `3725` → `1:02:05`. */
export function clock(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** `1536` → `1.5 KiB`. */
export function bytes(count: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Transfer speed and time left from bytes sent over elapsed milliseconds. */
export function transfer(sent: number, total: number, elapsedMs: number): { speed: string; left: string } {
  if (elapsedMs <= 0 || sent <= 0) return { speed: "—", left: "—" };
  const perSecond = (sent / elapsedMs) * 1000;
  const left = perSecond > 0 ? (total - sent) / perSecond : Infinity;
  return { speed: `${bytes(Math.round(perSecond))}/s`, left: Number.isFinite(left) ? clock(left) : "—" };
}

/** A search snippet `Sunset over [Lisbon]` as text and highlighted parts. */
export function snippetParts(snippet: string): { text: string; hit: boolean }[] {
  const parts: { text: string; hit: boolean }[] = [];
  const pattern = /\[([^\]]*)\]/g;
  let last = 0;
  for (const match of snippet.matchAll(pattern)) {
    if (match.index! > last) parts.push({ text: snippet.slice(last, match.index), hit: false });
    parts.push({ text: match[1], hit: true });
    last = match.index! + match[0].length;
  }
  if (last < snippet.length) parts.push({ text: snippet.slice(last), hit: false });
  return parts;
}

/** The index of the cue showing at `time` (cues in time order), or -1. Binary search: a
 * feature film has thousands of cues and this runs on every `timeupdate`. */
export function activeCue(cues: { start: number; end: number }[], time: number): number {
  let low = 0;
  let high = cues.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (cues[middle].start <= time) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found >= 0 && time < cues[found].end ? found : -1;
}
