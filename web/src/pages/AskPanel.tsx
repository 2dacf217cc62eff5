// "Ask about this video": the answer streams in as the provider writes it; the times it
// cites become buttons that seek the player; follow-ups continue the conversation.
import { FormEvent, KeyboardEvent, useEffect, useId, useRef, useState } from "react";
import type { Providers, Source } from "../api/client";
import { answerParts, ask, type AskDone, type AskFailure } from "../ask";
import { clock } from "../format";
import { tokens } from "../providers";
import { SourceBadge, span } from "./ProviderInsights";

type Turn = {
  question: string;
  answer: string;
  source?: Source;
  model?: string;
  done?: AskDone;
  failure?: AskFailure;
  stopped?: boolean;
};

/** Shown once the video has insights; while it is analysed again, asking waits (the
 * conversation so far stays). */
export function AskPanel({ videoId, providers, seek, ready }: { videoId: string; providers: Providers; seek: (time: number) => void; ready: boolean }) {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [question, setQuestion] = useState("");
  const [conversation, setConversation] = useState<string>();
  const [provider, setProvider] = useState<Source | "">("");
  const [streaming, setStreaming] = useState(false);
  const controller = useRef<AbortController | null>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const id = useId();

  // a question still being answered stops when the page goes
  useEffect(() => () => controller.current?.abort(), []);

  const update = (change: (turn: Turn) => Turn) =>
    setTurns((previous) => previous.map((turn, index) => (index === previous.length - 1 ? change(turn) : turn)));

  const submit = async (event?: FormEvent) => {
    event?.preventDefault();
    const text = question.trim();
    if (!text || streaming || !ready) return;
    const abort = new AbortController();
    controller.current = abort;
    setStreaming(true);
    setQuestion("");
    setTurns((previous) => [...previous, { question: text, answer: "" }]);
    const outcome = await ask(
      videoId,
      { question: text, conversation: conversation ?? null, provider: provider || null },
      {
        start: (start) => update((turn) => ({ ...turn, source: start.source, model: start.model })),
        delta: (delta) => update((turn) => ({ ...turn, answer: turn.answer + delta })),
        done: (done) => {
          // the conversation exists on the server once an answer is complete
          setConversation(done.conversation);
          update((turn) => ({ ...turn, answer: done.answer, done, source: done.source, model: done.model }));
        },
        error: (failure) => update((turn) => ({ ...turn, failure })),
      },
      abort.signal,
    );
    if (outcome === "aborted") update((turn) => ({ ...turn, stopped: true }));
    if (controller.current === abort) controller.current = null;
    setStreaming(false);
    input.current?.focus();
  };

  const reset = () => {
    controller.current?.abort();
    setTurns([]);
    setConversation(undefined);
    setQuestion("");
    input.current?.focus();
  };

  const keys = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void submit();
    }
  };

  return (
    <section aria-labelledby={`${id}-title`} className="panel ask">
      <div className="row tight">
        <h2 id={`${id}-title`}>Ask about this video</h2>
        {turns.length > 0 && <button type="button" className="link" onClick={reset}>New conversation</button>}
      </div>
      <div role="log" aria-live="polite" aria-busy={streaming} aria-label="Questions and answers" className="turns">
        {turns.map((turn, index) => (
          <article key={index} className="turn">
            <p className="question"><span className="q" aria-hidden="true">Q</span><span className="visually-hidden">You asked: </span>{turn.question}</p>
            <div className="answer">
              {turn.done ? (
                <p>
                  {answerParts(turn.done.answer, turn.done.citations).map((part, at) =>
                    "citation" in part ? (
                      <button key={at} type="button" className="cite" onClick={() => seek(part.citation.start)} title={`Play from ${clock(part.citation.start)}`}>
                        <span className="visually-hidden">Play from </span>
                        {span(part.citation.start, part.citation.end)}
                      </button>
                    ) : (
                      <span key={at}>{part.text}</span>
                    ),
                  )}
                </p>
              ) : (
                <p>{turn.answer || (!turn.failure && !turn.stopped ? <span className="meta">Thinking…</span> : null)}</p>
              )}
              {turn.failure && <p role="alert" className="error">{turn.failure.message}</p>}
              {turn.stopped && <p className="meta">Stopped.</p>}
              {turn.done && turn.done.dropped_citations.length > 0 && (
                <p className="meta">Times cited outside the video, left out: {turn.done.dropped_citations.join(", ")}</p>
              )}
              {turn.source && (
                <p className="meta">
                  <SourceBadge source={turn.source} model={turn.model} />
                  {turn.done && ` · ${tokens(turn.done.usage.total)} tokens`}
                </p>
              )}
            </div>
          </article>
        ))}
      </div>
      <form onSubmit={submit} className="stack">
        <label>{turns.length ? "Follow-up question" : "Question"}
          <textarea
            ref={input}
            rows={2}
            value={question}
            onChange={(event) => setQuestion(event.target.value)}
            onKeyDown={keys}
            maxLength={4000}
            placeholder={turns.length ? "Ask more; the answer remembers this conversation" : "e.g. When does the speaker show the chart?"}
            aria-describedby={`${id}-hint`}
          />
        </label>
        <p id={`${id}-hint`} className="meta hint">
          {ready ? "Enter asks, Shift+Enter starts a new line. Times in the answer play the video from there." : "The video is being analysed; questions can be asked again when it is ready."}
        </p>
        <div className="row tight">
          {providers.available.length > 1 && (
            <label className="inline">Provider
              <select value={provider} onChange={(event) => setProvider(event.target.value as Source | "")} disabled={streaming}>
                <option value="">Default</option>
                {providers.available.map((info) => <option key={info.source} value={info.source}>{info.source} ({info.model})</option>)}
              </select>
            </label>
          )}
          <span className="row tight">
            {streaming && <button type="button" className="secondary" onClick={() => controller.current?.abort()}>Stop</button>}
            <button type="submit" disabled={streaming || !ready || !question.trim()}>{streaming ? "Answering…" : "Ask"}</button>
          </span>
        </div>
      </form>
    </section>
  );
}
