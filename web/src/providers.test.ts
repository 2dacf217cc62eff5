import { describe, expect, it } from "vitest";
import { analysisOptions, groupLabels, mergeRanges, parseSchema, parseTime, refusal, severityRank, tokens, usd, type AnalysisForm } from "./providers";

describe("labels", () => {
  it("merges overlapping and touching ranges", () => {
    expect(mergeRanges([{ start: 5, end: 8 }, { start: 0, end: 2 }, { start: 2, end: 3 }, { start: 7, end: 9 }])).toEqual([{ start: 0, end: 3 }, { start: 5, end: 9 }]);
  });
  it("groups by name, in order of first appearance", () => {
    const base = { source: "gemini" as const, model: "m" };
    const groups = groupLabels([
      { ...base, name: "bicycle", start: 4, end: 6, category: "object", confidence: 0.7 },
      { ...base, name: "Harbour", start: 1, end: 2, category: "place" },
      { ...base, name: " Bicycle ", start: 0.5, end: 1, confidence: 0.9 },
      { ...base, name: "bicycle", start: 5, end: 7 },
    ]);
    expect(groups.map((group) => group.name)).toEqual(["bicycle", "Harbour"]);
    expect(groups[0]).toMatchObject({ category: "object", confidence: 0.9, ranges: [{ start: 0.5, end: 1 }, { start: 4, end: 7 }] });
    expect(groups[1].confidence).toBeUndefined();
  });
  it("orders severities", () => {
    expect(["low", "HIGH", "medium", "odd"].sort((a, b) => severityRank(b) - severityRank(a))).toEqual(["HIGH", "medium", "low", "odd"]);
  });
});

describe("figures", () => {
  it("formats tokens and dollars", () => {
    expect(tokens(18402)).toBe("18,402");
    expect(usd(1.254)).toBe("$1.25");
    expect(usd(0.0312)).toBe("$0.031");
    expect(usd(0.00042)).toBe("$0.0004");
    expect(usd(0.00000001)).toBe("< $0.0001");
    expect(usd(0)).toBe("$0.00");
    expect(usd(null)).toBe("no price");
  });
  it("reads times as people type them", () => {
    expect(parseTime("")).toBeUndefined();
    expect(parseTime("65")).toBe(65);
    expect(parseTime("65.5s")).toBe(65.5);
    expect(parseTime("1:05")).toBe(65);
    expect(parseTime("1:02:05")).toBe(3725);
    expect(parseTime("5:70")).toBeNaN();
    expect(parseTime("soon")).toBeNaN();
  });
});

describe("parseSchema", () => {
  it("accepts an object schema and no schema", () => {
    expect(parseSchema("  ")).toEqual({ ok: true });
    expect(parseSchema('{"type":"object","properties":{"dogs":{"type":"integer"}},"required":["dogs"]}')).toEqual({
      ok: true,
      schema: { type: "object", properties: { dogs: { type: "integer" } }, required: ["dogs"] },
    });
  });
  it("says where the JSON is broken", () => {
    const check = parseSchema('{\n  "type": "object",\n  "properties": {,}\n}');
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.message).toMatch(/^The schema is not valid JSON \(line 3, column \d+\)/);
  });
  it("says what the server would refuse", () => {
    const message = (text: string) => {
      const check = parseSchema(text);
      return check.ok ? "" : check.message;
    };
    expect(message("[1]")).toMatch(/must be a JSON object.*not an array/);
    expect(message('"x"')).toMatch(/not a string/);
    expect(message("{}")).toMatch(/Add "type": "object"/);
    expect(message('{"type":"string"}')).toMatch(/"object" or "array", not "string"/);
    expect(message('{"type":"object","required":"dogs"}')).toMatch(/"required" must be a list/);
  });
});

describe("analysisOptions", () => {
  const form: AnalysisForm = { provider: "gemini", model: "", features: ["summary", "chapters"], prompt: "", schema: "", mediaResolution: "", fps: "", start: "", end: "", language: "" };
  it("sends only what was chosen", () => {
    expect(analysisOptions(form)).toEqual({ options: { provider: "gemini", features: ["summary", "chapters"] }, problems: [] });
    expect(analysisOptions({ ...form, provider: "local", features: [] })).toEqual({ options: { provider: "local" }, problems: [] });
    expect(analysisOptions({ ...form, model: " gemini-3.5-flash-lite ", mediaResolution: "low", fps: "2", start: "0:10", end: "1:00", language: "fr" }).options).toEqual({
      provider: "gemini", model: "gemini-3.5-flash-lite", features: ["summary", "chapters"], media_resolution: "low", fps: 2, start: 10, end: 60, language: "fr",
    });
  });
  it("needs a prompt for custom, and a usable schema", () => {
    expect(analysisOptions({ ...form, features: ["custom"] }).problems).toEqual(["The custom prompt needs an instruction: say what to answer."]);
    expect(analysisOptions({ ...form, features: ["custom"], prompt: "Count the dogs", schema: "{" }).problems[0]).toMatch(/not valid JSON/);
    expect(analysisOptions({ ...form, features: ["custom"], prompt: "Count the dogs", schema: '{"type":"object"}' }).options).toEqual({
      provider: "gemini", features: ["custom"], prompt: "Count the dogs", schema: { type: "object" },
    });
  });
  it("lists every problem", () => {
    expect(analysisOptions({ ...form, features: [], fps: "30", start: "1:00", end: "0:30" }, 20).problems).toEqual([
      "Tick at least one thing to ask for.",
      "Frames per second must be above 0 and at most 24.",
      "The clip's end must come after its start.",
      "The clip starts after the video ends.",
    ]);
  });
});

describe("refusal", () => {
  it("says plainly that the budget is spent", () => {
    expect(refusal("quota_exceeded", "this analysis needs about 9000 tokens and 1200 are left this month.")).toBe(
      "This month's budget is spent (or too little of it is left for this), so nothing was queued: this analysis needs about 9000 tokens and 1200 are left this month. It starts again next month; Settings shows what you have used.",
    );
    expect(refusal("invalid-input", "fps must be above 0 and at most 24")).toBe("The server refused these options: fps must be above 0 and at most 24.");
    expect(refusal("internal", "Something broke.")).toBe("Something broke.");
  });
});
