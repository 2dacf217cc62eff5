// What analysis providers (Gemini, OpenAI-compatible models) add to a video's insights:
// summary, topics, chapters, transcript, labels, moderation flags, a custom answer and the
// runs themselves. Each part renders nothing when the insights lack it.
import { useEffect, useMemo, useRef } from "react";
import type { Chapter, Insights, ModerationFlag, ProviderRun, Source } from "../api/client";
import { activeCue, bytes, clock } from "../format";
import { FEATURE_LABELS, groupLabels, severityRank, tokens, usd } from "../providers";

type Seek = (time: number) => void;
type Timed = { start: number; end: number; text: string; speaker?: string | null };

/** Who wrote an insight: `gemini · gemini-3.5-flash`. */
export function SourceBadge({ source, model }: { source: Source; model?: string | null }) {
  return (
    <span className="source-badge" title={`Written by ${source}${model ? ` (${model})` : ""}`}>
      <span className="visually-hidden">by </span>
      {source}
      {model ? ` · ${model}` : ""}
    </span>
  );
}

/** `1:05–1:20` (or just `1:05` for an instant). */
export function span(start: number, end: number): string {
  return end - start >= 1 ? `${clock(start)}–${clock(end)}` : clock(start);
}

/** A list of timed lines, the one playing highlighted and kept in view; a click seeks. */
export function FollowAlong({ items, now, seek }: { items: Timed[]; now: number; seek: Seek }) {
  const current = activeCue(items, now);
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const item = list.current?.querySelector<HTMLElement>(`[data-cue="${current}"]`);
    if (item && list.current) list.current.scrollTop = item.offsetTop - list.current.offsetTop - 40;
  }, [current]);
  return (
    <ol className="cues" ref={list}>
      {items.map((item, index) => {
        const newSpeaker = item.speaker && item.speaker !== items[index - 1]?.speaker;
        return (
          <li key={index} data-cue={index} aria-current={index === current ? "true" : undefined}>
            <button type="button" className="cue" onClick={() => seek(item.start)}>
              <span className="time">{clock(item.start)}</span>{" "}
              {item.speaker && <span className={newSpeaker ? "speaker" : "speaker same"}>{item.speaker}: </span>}
              <span>{item.text}</span>
            </button>
          </li>
        );
      })}
    </ol>
  );
}

/** The transcript beside the player, like the captions. */
export function TranscriptPanel({ insights, now, seek }: { insights: Insights; now: number; seek: Seek }) {
  const segments = useMemo(() => [...(insights.transcript ?? [])].sort((a, b) => a.start - b.start), [insights.transcript]);
  if (segments.length === 0) return null;
  const first = segments[0];
  return (
    <section aria-label="Transcript" className="panel">
      <div className="row tight">
        <h2>Transcript</h2>
        <SourceBadge source={first.source} model={first.model} />
      </div>
      <FollowAlong items={segments} now={now} seek={seek} />
    </section>
  );
}

/** The chapters as a lane of the timeline; snapped starts get a solid edge. */
export function ChapterLane({ chapters, duration, seek }: { chapters: Chapter[]; duration: number; seek: Seek }) {
  if (chapters.length === 0) return null;
  const percent = (time: number) => `${Math.min(100, (time / duration) * 100)}%`;
  return (
    <div className="lane chapters" data-lane="chapters" title="Chapters">
      {chapters.map((chapter, index) => (
        <button
          key={index}
          type="button"
          className={chapter.snapped ? "segment chapter snapped" : "segment chapter"}
          style={{ left: percent(chapter.start), width: `${Math.max(0.5, ((chapter.end - chapter.start) / duration) * 100)}%` }}
          title={`${chapter.title} · ${clock(chapter.start)}–${clock(chapter.end)}${chapter.snapped ? " · starts on a shot cut" : ""}`}
          aria-label={`Chapter ${index + 1}: ${chapter.title}, from ${clock(chapter.start)} to ${clock(chapter.end)}`}
          onClick={() => seek(chapter.start)}
        >
          <span aria-hidden="true">{chapter.title}</span>
        </button>
      ))}
    </div>
  );
}

/** Moderation flags as a lane of the timeline, coloured by severity. */
export function ModerationLane({ flags, duration, seek }: { flags: ModerationFlag[]; duration: number; seek: Seek }) {
  if (flags.length === 0) return null;
  const percent = (time: number) => `${Math.min(100, (time / duration) * 100)}%`;
  return (
    <div className="lane" data-lane="moderation" title="Moderation flags">
      {flags.map((flag, index) => (
        <button
          key={index}
          type="button"
          className={`segment flag ${flag.severity.toLowerCase()}`}
          style={{ left: percent(flag.start), width: `${Math.max(0.5, ((flag.end - flag.start) / duration) * 100)}%` }}
          title={`${flag.category} (${flag.severity}) ${clock(flag.start)}–${clock(flag.end)}`}
          aria-label={`Flagged ${flag.category}, ${flag.severity} severity, from ${clock(flag.start)} to ${clock(flag.end)}`}
          onClick={() => seek(flag.start)}
        />
      ))}
    </div>
  );
}

function Summary({ insights }: { insights: Insights }) {
  const summary = insights.summary;
  const topics = insights.topics && insights.topics.topics.length + insights.topics.keywords.length > 0 ? insights.topics : undefined;
  const chips = (words: string[], kind: string) => (
    <ul className="chips" aria-label={kind}>
      {words.map((word) => <li key={word}>{word}</li>)}
    </ul>
  );
  if (!summary && !topics) return null;
  return (
    <section aria-label="Summary" className="panel">
      <div className="row tight">
        <h2>{summary ? "Summary" : "Topics"}</h2>
        <SourceBadge source={(summary ?? topics)!.source} model={(summary ?? topics)!.model} />
      </div>
      {summary && <p className="summary">{summary.text}</p>}
      {topics && topics.topics.length > 0 && <><h3>Topics</h3>{chips(topics.topics, "Topics")}</>}
      {topics && topics.keywords.length > 0 && <><h3>Keywords</h3>{chips(topics.keywords, "Keywords")}</>}
    </section>
  );
}

function Chapters({ chapters, now, seek }: { chapters: Chapter[]; now: number; seek: Seek }) {
  const current = activeCue(chapters, now);
  return (
    <section aria-label="Chapters" className="panel">
      <div className="row tight">
        <h2>Chapters</h2>
        <SourceBadge source={chapters[0].source} model={chapters[0].model} />
      </div>
      <ol className="chapters">
        {chapters.map((chapter, index) => (
          <li key={index} aria-current={index === current ? "true" : undefined}>
            <button type="button" className="cue" onClick={() => seek(chapter.start)}>
              <span className="time">{clock(chapter.start)}</span>{" "}
              <strong>{chapter.title}</strong>
              {chapter.snapped && (
                <span className="snapped" title="The start was moved onto a shot cut the local analysis found">
                  <span aria-hidden="true"> ◆</span>
                  <span className="visually-hidden"> (starts on a shot cut)</span>
                </span>
              )}
              {chapter.summary && <span className="chapter-summary">{chapter.summary}</span>}
            </button>
          </li>
        ))}
      </ol>
    </section>
  );
}

function Labels({ insights, seek }: { insights: Insights; seek: Seek }) {
  const groups = useMemo(() => groupLabels(insights.labels ?? []), [insights.labels]);
  if (groups.length === 0) return null;
  return (
    <section aria-label="Labels" className="panel">
      <div className="row tight">
        <h2>Labels</h2>
        <SourceBadge source={groups[0].source} model={groups[0].model} />
      </div>
      <ul className="labels">
        {groups.map((group) => (
          <li key={group.name}>
            <span className="label-name">{group.name}</span>
            {(group.category || group.confidence != null) && (
              <span className="meta">
                {" "}
                {[group.category, group.confidence != null ? `${Math.round(group.confidence * 100)}%` : undefined].filter(Boolean).join(" · ")}
              </span>
            )}
            <span className="ranges">
              {group.ranges.map((range) => (
                <button key={range.start} type="button" className="chip-button" onClick={() => seek(range.start)}>
                  <span className="visually-hidden">{group.name} at </span>{span(range.start, range.end)}
                </button>
              ))}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Moderation({ flags, seek }: { flags: ModerationFlag[]; seek: Seek }) {
  const sorted = [...flags].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.start - b.start);
  return (
    <section aria-label="Moderation" className="panel">
      <div className="row tight">
        <h2>Moderation flags</h2>
        <SourceBadge source={flags[0].source} model={flags[0].model} />
      </div>
      <ul className="flags">
        {sorted.map((flag, index) => (
          <li key={index}>
            <span className={`severity ${flag.severity.toLowerCase()}`}>{flag.severity}</span>{" "}
            <strong>{flag.category.replace(/_/g, " ")}</strong>{" "}
            <button type="button" className="chip-button" onClick={() => seek(flag.start)}>
              <span className="visually-hidden">Play the flagged part, </span>{span(flag.start, flag.end)}
            </button>
            {flag.reason && <span className="reason">{flag.reason}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Custom({ insights }: { insights: Insights }) {
  const custom = insights.custom;
  if (!custom) return null;
  return (
    <section aria-label="Custom answer" className="panel">
      <div className="row tight">
        <h2>Custom answer</h2>
        <SourceBadge source={custom.source} model={custom.model} />
      </div>
      <p className="meta">Asked: {custom.prompt}</p>
      <pre className="json" tabIndex={0}>{JSON.stringify(custom.answer, null, 2)}</pre>
    </section>
  );
}

/** The panels beside one another under the timeline (one column on a phone). */
export function ProviderPanels({ insights, now, seek }: { insights: Insights; now: number; seek: Seek }) {
  const chapters = insights.chapters ?? [];
  const flags = insights.moderation ?? [];
  const any = insights.summary || insights.topics?.topics.length || insights.topics?.keywords.length || chapters.length || (insights.labels ?? []).length || flags.length || insights.custom;
  if (!any) return null;
  return (
    <div className="insight-panels">
      <Summary insights={insights} />
      {chapters.length > 0 && <Chapters chapters={chapters} now={now} seek={seek} />}
      <Labels insights={insights} seek={seek} />
      {flags.length > 0 && <Moderation flags={flags} seek={seek} />}
      <Custom insights={insights} />
    </div>
  );
}

/** The provider runs: tokens, cost, cache, warnings; collapsed until asked for. */
export function ProviderRuns({ runs }: { runs: ProviderRun[] }) {
  if (runs.length === 0) return null;
  const total = runs.reduce((sum, run) => sum + run.usage.total, 0);
  const priced = runs.filter((run) => run.cost_usd != null);
  const cost = priced.reduce((sum, run) => sum + (run.cost_usd ?? 0), 0);
  const warnings = runs.reduce((sum, run) => sum + run.warnings.length, 0);
  return (
    <details className="panel runs">
      <summary>
        <h2>Provider runs</h2>{" "}
        <span className="meta">
          {runs.length} run{runs.length === 1 ? "" : "s"} · {tokens(total)} tokens{priced.length ? ` · ${usd(cost)}` : ""}
          {warnings ? ` · ${warnings} warning${warnings === 1 ? "" : "s"}` : ""}
        </span>
      </summary>
      {runs.map((run, index) => (
        <div key={index} className="run">
          <h3>
            <SourceBadge source={run.source} model={run.model} />
            {run.cached && <span className="cached"> cached — nothing sent, nothing paid</span>}
          </h3>
          <dl className="facts">
            <dt>Asked for</dt><dd>{run.features.map((feature) => FEATURE_LABELS[feature] ?? feature).join(", ") || "—"}</dd>
            <dt>Tokens</dt>
            <dd>
              {tokens(run.usage.total)} ({tokens(run.usage.prompt)} prompt, {tokens(run.usage.candidates)} answer{run.usage.thoughts ? `, ${tokens(run.usage.thoughts)} thinking` : ""})
              {run.usage.by_modality && Object.keys(run.usage.by_modality).length > 0 && (
                <span className="meta"> · prompt by kind: {Object.entries(run.usage.by_modality).map(([kind, count]) => `${kind.toLowerCase()} ${tokens(count)}`).join(", ")}</span>
              )}
            </dd>
            <dt>Cost</dt><dd>{usd(run.cost_usd)}</dd>
            <dt>Sent</dt><dd>{bytes(run.bytes_uploaded)}{run.bytes_saved > 0 ? ` (${bytes(run.bytes_saved)} saved by the smaller copy)` : ""}</dd>
            <dt>Warnings</dt>
            <dd>
              {run.warnings.length === 0 ? "none" : (
                <ul className="warnings">{run.warnings.map((warning, at) => <li key={at}>{warning}</li>)}</ul>
              )}
            </dd>
          </dl>
        </div>
      ))}
    </details>
  );
}
