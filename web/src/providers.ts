// Pure helpers for what analysis providers add (unit-tested): labels grouped by name, the
// re-analysis form turned into `AnalysisOptions` with what is wrong said plainly, token
// and cost figures.
import type { AnalysisOptions, Feature, Label, MediaResolution, Source } from "./api/client";

export const FEATURE_LABELS: Record<Feature, string> = {
  summary: "Summary",
  chapters: "Chapters",
  transcript: "Transcript with speakers",
  labels: "Labels (objects, places, activities)",
  text: "On-screen text",
  topics: "Topics and keywords",
  moderation: "Moderation flags",
  custom: "Custom prompt",
};

export type Range = { start: number; end: number };
export type LabelGroup = { name: string; category?: string; confidence?: number; source: Source; model?: string; ranges: Range[] };

/** Time ranges in order, overlapping or touching ones merged. */
export function mergeRanges(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: Range[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range.start <= last.end) last.end = Math.max(last.end, range.end);
    else merged.push({ start: range.start, end: Math.max(range.start, range.end) });
  }
  return merged;
}

/** Labels grouped by name (case and spacing ignored), each with its time ranges and the
 * highest confidence given; groups in order of first appearance. */
export function groupLabels(labels: Label[]): LabelGroup[] {
  const groups = new Map<string, LabelGroup & { first: number; raw: Range[] }>();
  for (const label of labels) {
    const key = label.name.trim().toLowerCase().replace(/\s+/g, " ");
    if (!key) continue;
    let group = groups.get(key);
    if (!group) {
      group = { name: label.name.trim(), source: label.source, model: label.model ?? undefined, ranges: [], raw: [], first: label.start };
      groups.set(key, group);
    }
    group.first = Math.min(group.first, label.start);
    group.raw.push({ start: label.start, end: label.end });
    if (label.category && !group.category) group.category = label.category;
    if (label.confidence != null) group.confidence = Math.max(group.confidence ?? 0, label.confidence);
  }
  return [...groups.values()]
    .sort((a, b) => a.first - b.first || a.name.localeCompare(b.name))
    .map(({ first: _first, raw, ...group }) => ({ ...group, ranges: mergeRanges(raw) }));
}

/** Severity as a number for ordering (`high` first); unknown words count as `low`. */
export function severityRank(severity: string): number {
  return { high: 3, medium: 2, low: 1 }[severity.toLowerCase()] ?? 1;
}

/** `18402` → `18,402`. */
export function tokens(count: number): string {
  return Math.round(count).toLocaleString("en-US");
}

/** US dollars with as many decimals as small amounts need: `$1.25`, `$0.031`, `$0.0004`. */
export function usd(amount: number | null | undefined): string {
  if (amount == null || !Number.isFinite(amount)) return "no price";
  if (amount === 0) return "$0.00";
  const digits = amount >= 1 ? 2 : amount >= 0.01 ? 3 : 4;
  const text = amount.toFixed(digits);
  return text === (0).toFixed(digits) ? "< $0.0001" : `$${text}`;
}

/** `65`, `65.5`, `1:05`, `1:02:05` → seconds; empty → undefined; anything else → NaN. */
export function parseTime(text: string): number | undefined {
  const value = text.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?s?$/.test(value)) return Number(value.replace(/s$/, ""));
  const match = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(value);
  if (!match) return NaN;
  const [, hours, minutes, seconds] = match;
  if (Number(seconds) >= 60 || (hours !== undefined && Number(minutes) >= 60)) return NaN;
  return Number(hours ?? 0) * 3600 + Number(minutes) * 60 + Number(seconds);
}

/** Where a JSON.parse error happened, as "line L, column C", from the engine's message
 * (V8 and SpiderMonkey say it differently; both give a position or line and column). */
function jsonErrorPlace(message: string, text: string): string | undefined {
  const lineColumn = /line (\d+) column (\d+)/i.exec(message);
  if (lineColumn) return `line ${lineColumn[1]}, column ${lineColumn[2]}`;
  const position = /position (\d+)/i.exec(message);
  if (!position) return undefined;
  const before = text.slice(0, Number(position[1]));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return `line ${line}, column ${column}`;
}

export type SchemaCheck = { ok: true; schema?: Record<string, unknown> } | { ok: false; message: string };

/** A JSON Schema typed into the form: parsed, and checked as far as the server checks
 * before anything is sent (an object whose top-level `type` is `object` or `array`). Empty
 * text is no schema. */
export function parseSchema(text: string): SchemaCheck {
  if (!text.trim()) return { ok: true };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const place = jsonErrorPlace(message, text);
    const reason = message.replace(/^JSON\.parse: /, "").replace(/ in JSON at position \d+.*$/, "").replace(/ at line \d+ column \d+.*$/, "");
    return { ok: false, message: `The schema is not valid JSON${place ? ` (${place})` : ""}: ${reason}.` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    return { ok: false, message: `The schema must be a JSON object ({ … }), not ${kind}.` };
  }
  const schema = value as Record<string, unknown>;
  if (!("type" in schema)) return { ok: false, message: 'Add "type": "object" (or "array") at the top level of the schema.' };
  if (schema.type !== "object" && schema.type !== "array") {
    return { ok: false, message: `The top-level "type" must be "object" or "array", not ${JSON.stringify(schema.type)}.` };
  }
  if ("properties" in schema && (schema.properties === null || typeof schema.properties !== "object" || Array.isArray(schema.properties))) {
    return { ok: false, message: '"properties" must be an object mapping names to schemas.' };
  }
  if ("required" in schema && !(Array.isArray(schema.required) && schema.required.every((name) => typeof name === "string"))) {
    return { ok: false, message: '"required" must be a list of property names.' };
  }
  return { ok: true, schema };
}

/** What the "Analyse again" form holds. */
export type AnalysisForm = {
  provider: Source;
  model: string;
  features: Feature[];
  prompt: string;
  schema: string;
  mediaResolution: "" | MediaResolution;
  fps: string;
  start: string;
  end: string;
  language: string;
};

/** The request body for the form, or what to fix (one sentence each). */
export function analysisOptions(form: AnalysisForm, duration?: number): { options: AnalysisOptions; problems: [] } | { options?: undefined; problems: string[] } {
  if (form.provider === "local") return { options: { provider: "local" }, problems: [] };
  const problems: string[] = [];
  const options: AnalysisOptions = { provider: form.provider };
  if (form.model.trim()) options.model = form.model.trim();
  if (form.features.length === 0) problems.push("Tick at least one thing to ask for.");
  options.features = [...form.features];
  const custom = form.features.includes("custom");
  if (custom) {
    if (!form.prompt.trim()) problems.push("The custom prompt needs an instruction: say what to answer.");
    else options.prompt = form.prompt.trim();
    const schema = parseSchema(form.schema);
    if (!schema.ok) problems.push(schema.message);
    else if (schema.schema) options.schema = schema.schema as AnalysisOptions["schema"];
  }
  if (form.mediaResolution) options.media_resolution = form.mediaResolution;
  if (form.fps.trim()) {
    const fps = Number(form.fps.trim());
    if (!(fps > 0 && fps <= 24)) problems.push("Frames per second must be above 0 and at most 24.");
    else options.fps = fps;
  }
  const start = parseTime(form.start);
  const end = parseTime(form.end);
  if (Number.isNaN(start)) problems.push("The clip's start is not a time (try 65 or 1:05).");
  if (Number.isNaN(end)) problems.push("The clip's end is not a time (try 95 or 1:35).");
  if (start !== undefined && !Number.isNaN(start)) options.start = start;
  if (end !== undefined && !Number.isNaN(end)) options.end = end;
  if (options.start != null && options.end != null && options.end <= options.start) problems.push("The clip's end must come after its start.");
  if (duration && options.start != null && options.start >= duration) problems.push("The clip starts after the video ends.");
  if (form.language.trim()) options.language = form.language.trim();
  return problems.length ? { problems } : { options, problems: [] };
}

/** What to say when the server refuses an analysis; the spent budget gets its own words. */
export function refusal(code: string | undefined, message: string): string {
  const said = message.replace(/\.$/, "");
  if (code === "quota_exceeded") return `This month's budget is spent (or too little of it is left for this), so nothing was queued: ${said}. It starts again next month; Settings shows what you have used.`;
  if (code === "analysis-in-progress") return `An analysis of this video is already queued or running: ${said}. Try again when it has finished.`;
  if (code === "invalid-input") return `The server refused these options: ${said}.`;
  return message;
}
