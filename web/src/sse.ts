// Server-Sent Events read from a fetch() body. EventSource only GETs; `POST .../ask` answers
// with an event stream, so its body is parsed here, as the HTML standard's event-stream
// format says: lines end in CRLF, LF or CR; `event:` names the event, `data:` lines are
// joined with newlines, `id:` and `retry:` are noted, lines starting with `:` are comments
// (keep-alives); a blank line dispatches the event (one without data is dropped).

export type SseEvent = { event: string; data: string; id?: string };

/** Incremental parser: feed it text as it arrives, in pieces of any size. */
export class SseParser {
  private buffer = "";
  private type = "";
  private data: string[] = [];
  private id: string | undefined;
  private started = false;

  /** The events completed by this piece of text. */
  push(text: string): SseEvent[] {
    this.buffer += text;
    if (!this.started && this.buffer.length > 0) {
      // a byte order mark may open the stream
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
      this.started = this.buffer.length > 0;
    }
    return this.lines(false);
  }

  /** The stream ended: a last line without its line break still counts, but an event
   * that no blank line completed is dropped, as browsers do. */
  end(): SseEvent[] {
    const events = this.lines(true);
    this.type = "";
    this.data = [];
    return events;
  }

  private lines(final: boolean): SseEvent[] {
    const events: SseEvent[] = [];
    for (;;) {
      const cr = this.buffer.indexOf("\r");
      const lf = this.buffer.indexOf("\n");
      let end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      let next: number;
      if (end < 0) {
        if (!final || this.buffer.length === 0) break;
        end = this.buffer.length;
        next = end;
      } else if (this.buffer[end] === "\r") {
        // a CR at the very end may be the first half of a CRLF: wait for the next piece
        if (end === this.buffer.length - 1 && !final) break;
        next = this.buffer[end + 1] === "\n" ? end + 2 : end + 1;
      } else {
        next = end + 1;
      }
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(next);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === "") {
      const data = this.data;
      const type = this.type;
      this.data = [];
      this.type = "";
      if (data.length === 0) return undefined;
      return { event: type || "message", data: data.join("\n"), ...(this.id !== undefined ? { id: this.id } : {}) };
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
    // `retry:` and unknown fields: nothing to do for a one-off stream
    return undefined;
  }
}

/** Reads a response body to its end (or until `signal` aborts), handing each event over. */
export async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: SseEvent) => void, signal?: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const abort = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener("abort", abort);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true })).forEach(onEvent);
    }
    parser.push(decoder.decode()).forEach(onEvent);
    parser.end().forEach(onEvent);
  } finally {
    signal?.removeEventListener("abort", abort);
    reader.releaseLock();
  }
}
