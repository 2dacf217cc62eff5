import { describe, expect, it } from "vitest";
import { activeCue, bytes, clock, snippetParts, transfer } from "./format";

describe("format", () => {
  it("shows times as a player does", () => {
    expect(clock(0)).toBe("0:00");
    expect(clock(83.4)).toBe("1:23");
    expect(clock(3725)).toBe("1:02:05");
  });
  it("shows sizes in binary units", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(5 * 1024 ** 3)).toBe("5.0 GiB");
  });
  it("estimates speed and time left", () => {
    expect(transfer(0, 100, 1000)).toEqual({ speed: "—", left: "—" });
    expect(transfer(1024 * 1024, 3 * 1024 * 1024, 1000)).toEqual({ speed: "1.0 MiB/s", left: "0:02" });
  });
  it("splits search snippets into highlighted parts", () => {
    expect(snippetParts("Sunset over [Lisbon] at dusk")).toEqual([
      { text: "Sunset over ", hit: false },
      { text: "Lisbon", hit: true },
      { text: " at dusk", hit: false },
    ]);
  });
  it("finds the cue showing at a time", () => {
    const cues = [{ start: 0.5, end: 2 }, { start: 2.5, end: 4 }, { start: 4, end: 6 }];
    expect(activeCue(cues, 0)).toBe(-1);
    expect(activeCue(cues, 1)).toBe(0);
    expect(activeCue(cues, 2.2)).toBe(-1);
    expect(activeCue(cues, 4)).toBe(2);
    expect(activeCue(cues, 7)).toBe(-1);
    expect(activeCue([], 1)).toBe(-1);
  });
});
