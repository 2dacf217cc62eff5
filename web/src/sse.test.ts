import { describe, expect, it } from "vitest";
import { readEvents, SseParser, type SseEvent } from "./sse";

/** Feeds `text` to a parser in pieces of `size` characters. */
function parse(text: string, size = text.length): SseEvent[] {
  const parser = new SseParser();
  const events: SseEvent[] = [];
  for (let at = 0; at < text.length; at += size) events.push(...parser.push(text.slice(at, at + size)));
  return [...events, ...parser.end()];
}

describe("SseParser", () => {
  const stream =
    'event: start\ndata: {"conversation":"c1","source":"gemini","model":"m"}\n\n' +
    ': keep-alive\n\n' +
    'event: delta\ndata: {"text":"A dog "}\n\n' +
    'event: delta\ndata: {"text":"runs [00:05]."}\n\n' +
    'event: done\ndata: {"answer":"A dog runs [00:05]."}\n\n';

  it("reads named events and skips comments", () => {
    expect(parse(stream).map((event) => event.event)).toEqual(["start", "delta", "delta", "done"]);
    expect(JSON.parse(parse(stream)[1].data)).toEqual({ text: "A dog " });
  });

  it("gives the same events whatever the chunk boundaries", () => {
    const whole = parse(stream);
    for (const size of [1, 2, 3, 7, 16]) expect(parse(stream, size)).toEqual(whole);
  });

  it("accepts CRLF and CR line ends, also split between chunks", () => {
    const crlf = stream.replace(/\n/g, "\r\n");
    const cr = stream.replace(/\n/g, "\r");
    expect(parse(crlf, 1)).toEqual(parse(stream));
    expect(parse(cr, 1)).toEqual(parse(stream));
    expect(parse(crlf, 5)).toEqual(parse(stream));
  });

  it("joins data lines, strips one space, defaults the type, keeps the id", () => {
    expect(parse("data:  two spaces\ndata:second\nid: 7\n\n")).toEqual([{ event: "message", data: " two spaces\nsecond", id: "7" }]);
    expect(parse("data\n\n")).toEqual([{ event: "message", data: "" }]);
  });

  it("drops events without data and an event the stream cut off", () => {
    expect(parse("event: ping\n\n")).toEqual([]);
    expect(parse("event: delta\ndata: {\"text\":\"half")).toEqual([]);
  });

  it("ignores a byte order mark and unknown fields", () => {
    expect(parse("\ufeffretry: 1000\nfoo: bar\ndata: x\n\n")).toEqual([{ event: "message", data: "x" }]);
  });

  it("reads a fetch body, multi-byte characters split across chunks", async () => {
    const bytes = new TextEncoder().encode('event: delta\ndata: {"text":"café ☕"}\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const byte of bytes) controller.enqueue(new Uint8Array([byte]));
        controller.close();
      },
    });
    const events: SseEvent[] = [];
    await readEvents(body, (event) => events.push(event));
    expect(events).toEqual([{ event: "delta", data: '{"text":"café ☕"}' }]);
  });
});
