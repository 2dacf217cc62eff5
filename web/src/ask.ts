// Questions about a video: `POST /api/v1/videos/{id}/ask` answers as Server-Sent Events
// (`start`, `delta`…, then `done` or `error`), read here from the fetch() body.
import { csrfHeaders, refreshSession, type AskRequest, type Source, type TokenUsage } from "./api/client";
import { readEvents, type SseEvent } from "./sse";

export type Citation = { start: number; end: number; text: string };
export type AskStart = { conversation: string; source: Source; model: string };
export type AskDone = AskStart & {
  answer: string;
  citations: Citation[];
  dropped_citations: string[];
  usage: TokenUsage;
};
export type AskFailure = { code: string; message: string };

export type AskHandlers = {
  start?: (start: AskStart) => void;
  delta?: (text: string) => void;
  done?: (done: AskDone) => void;
  error?: (failure: AskFailure) => void;
};

/** How a stream ended. */
export type AskOutcome = "done" | "error" | "incomplete" | "aborted";

const INCOMPLETE: AskFailure = {
  code: "provider_unavailable",
  message: "The answer stopped before it was complete. Ask again in a moment.",
};

/** Hands one parsed event to its handler; true when it ends the answer. */
export function dispatchAskEvent(event: SseEvent, handlers: AskHandlers): "done" | "error" | undefined {
  let payload: unknown;
  try {
    payload = JSON.parse(event.data);
  } catch {
    if (event.event === "error") {
      handlers.error?.({ code: "internal", message: event.data || "The answer failed." });
      return "error";
    }
    return undefined; // not ours (e.g. a proxy's comment turned into data)
  }
  switch (event.event) {
    case "start":
      handlers.start?.(payload as AskStart);
      return undefined;
    case "delta":
      handlers.delta?.(String((payload as { text?: unknown }).text ?? ""));
      return undefined;
    case "done":
      handlers.done?.(payload as AskDone);
      return "done";
    case "error": {
      const failure = payload as Partial<AskFailure>;
      handlers.error?.({ code: failure.code ?? "internal", message: failure.message ?? "The answer failed." });
      return "error";
    }
    default:
      return undefined;
  }
}

/** Reads an answer's event stream; a stream that ends without `done` or `error` is an
 * error too (the connection dropped, a proxy timed out). */
export async function consumeAsk(body: ReadableStream<Uint8Array>, handlers: AskHandlers, signal?: AbortSignal): Promise<AskOutcome> {
  let outcome: AskOutcome | undefined;
  try {
    await readEvents(
      body,
      (event) => {
        if (outcome) return;
        outcome = dispatchAskEvent(event, handlers);
      },
      signal,
    );
  } catch (error) {
    if (signal?.aborted) return "aborted";
    if (!outcome) {
      handlers.error?.({ ...INCOMPLETE, message: `The connection dropped (${error instanceof Error ? error.message : String(error)}). Ask again.` });
      return "error";
    }
  }
  if (outcome) return outcome;
  if (signal?.aborted) return "aborted";
  handlers.error?.(INCOMPLETE);
  return "incomplete";
}

/** Asks; the handlers see the answer as it is written. Errors before the stream (a 400, a
 * 404 for an expired conversation, a 409 for a video not analysed yet) arrive as `error`
 * too, with the server's message. */
export async function ask(videoId: string, request: AskRequest, handlers: AskHandlers, signal?: AbortSignal): Promise<AskOutcome> {
  // what the generated client sends for writes: the cookie session and the CSRF header,
  // and one refresh of the session on 401
  const send = () =>
    fetch(`/api/v1/videos/${encodeURIComponent(videoId)}/ask`, {
      method: "POST",
      credentials: "include",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...csrfHeaders() },
      body: JSON.stringify(request),
      signal,
    });
  let response: Response;
  try {
    response = await send();
    if (response.status === 401 && (await refreshSession())) response = await send();
  } catch (error) {
    if (signal?.aborted) return "aborted";
    handlers.error?.({ code: "network", message: `${error instanceof Error ? error.message : String(error)}. Check your connection and try again.` });
    return "error";
  }
  if (!response.ok || !response.body) {
    handlers.error?.(await failureOf(response));
    return "error";
  }
  return consumeAsk(response.body, handlers, signal);
}

/** The API's `{error: {code, message}}`, or what the status says. */
export async function failureOf(response: Response): Promise<AskFailure> {
  try {
    const body = (await response.json()) as { error?: Partial<AskFailure> };
    if (body.error?.message) return { code: body.error.code ?? String(response.status), message: body.error.message };
  } catch {
    /* not JSON */
  }
  return { code: String(response.status), message: `The server answered ${response.status} ${response.statusText}`.trim() + "." };
}

export type AnswerPart = { text: string } | { citation: Citation };

/** The answer as text and citations, each citation where the model wrote it; citations
 * the text does not contain (it should) come last. */
export function answerParts(answer: string, citations: Citation[]): AnswerPart[] {
  const parts: AnswerPart[] = [];
  const rest: Citation[] = [];
  let cursor = 0;
  for (const citation of citations) {
    const at = citation.text ? answer.indexOf(citation.text, cursor) : -1;
    if (at < 0) {
      rest.push(citation);
      continue;
    }
    if (at > cursor) parts.push({ text: answer.slice(cursor, at) });
    parts.push({ citation });
    cursor = at + citation.text.length;
  }
  if (cursor < answer.length) parts.push({ text: answer.slice(cursor) });
  return [...parts, ...rest.map((citation) => ({ citation }))];
}
