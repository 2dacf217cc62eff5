import { describe, expect, it } from "vitest";
import { answerParts, consumeAsk, type AskDone, type AskFailure, type AskStart } from "./ask";

function body(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      chunks.forEach((chunk) => controller.enqueue(encoder.encode(chunk)));
      controller.close();
    },
  });
}

function recorder() {
  const seen: { start?: AskStart; deltas: string[]; done?: AskDone; error?: AskFailure } = { deltas: [] };
  return {
    seen,
    handlers: {
      start: (start: AskStart) => (seen.start = start),
      delta: (text: string) => seen.deltas.push(text),
      done: (done: AskDone) => (seen.done = done),
      error: (failure: AskFailure) => (seen.error = failure),
    },
  };
}

describe("consumeAsk", () => {
  it("hands over start, the deltas and done", async () => {
    const { seen, handlers } = recorder();
    const done = { conversation: "c1", source: "gemini", model: "m", answer: "A dog [00:05].", citations: [{ start: 5, end: 5, text: "[00:05]" }], dropped_citations: [], usage: { prompt: 10, candidates: 5, thoughts: 0, total: 15 } };
    const outcome = await consumeAsk(
      body('event: start\ndata: {"conversation":"c1","source":"gemini","model":"m"}\n\nevent: del', 'ta\ndata: {"text":"A dog "}\n\n', 'event: delta\ndata: {"text":"[00:05]."}\n\n', `event: done\ndata: ${JSON.stringify(done)}\n\n`),
      handlers,
    );
    expect(outcome).toBe("done");
    expect(seen.start).toEqual({ conversation: "c1", source: "gemini", model: "m" });
    expect(seen.deltas.join("")).toBe("A dog [00:05].");
    expect(seen.done).toEqual(done);
    expect(seen.error).toBeUndefined();
  });

  it("passes on the server's error event", async () => {
    const { seen, handlers } = recorder();
    const outcome = await consumeAsk(body('event: start\ndata: {"conversation":"c","source":"gemini","model":"m"}\n\n', 'event: error\ndata: {"code":"provider_blocked","message":"the answer was blocked (SAFETY)"}\n\n'), handlers);
    expect(outcome).toBe("error");
    expect(seen.error).toEqual({ code: "provider_blocked", message: "the answer was blocked (SAFETY)" });
  });

  it("says so when the stream ends without done", async () => {
    const { seen, handlers } = recorder();
    const outcome = await consumeAsk(body('event: delta\ndata: {"text":"half an ans'), handlers);
    expect(outcome).toBe("incomplete");
    expect(seen.error?.code).toBe("provider_unavailable");
  });
});

describe("answerParts", () => {
  it("puts each citation where the model wrote it", () => {
    const citations = [{ start: 5, end: 5, text: "[00:05]" }, { start: 10, end: 20, text: "[00:10-00:20]" }];
    expect(answerParts("A dog runs [00:05] then [00:10-00:20].", citations)).toEqual([
      { text: "A dog runs " },
      { citation: citations[0] },
      { text: " then " },
      { citation: citations[1] },
      { text: "." },
    ]);
  });
  it("finds a repeated citation twice and puts missing ones last", () => {
    const a = { start: 5, end: 5, text: "[00:05]" };
    const missing = { start: 7, end: 8, text: "[00:07-00:08]" };
    expect(answerParts("[00:05] and again [00:05]", [a, a, missing])).toEqual([{ citation: a }, { text: " and again " }, { citation: a }, { citation: missing }]);
    expect(answerParts("No times.", [])).toEqual([{ text: "No times." }]);
  });
});
