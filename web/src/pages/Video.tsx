import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, errorMessage, type Insights } from "../api/client";
import { clock } from "../format";
import { useLiveEvents, useProgress } from "../live";
import { useProviders } from "../session";
import { AnalyseDialog } from "./AnalyseDialog";
import { AskPanel } from "./AskPanel";
import { ChapterLane, FollowAlong, ModerationLane, ProviderPanels, ProviderRuns, SourceBadge, TranscriptPanel } from "./ProviderInsights";

type Segment = { start: number; end: number };

/** Other videos of the library that are near-copies of this one (same keyframes). */
function Similar({ id }: { id: string }) {
  const similar = useQuery({
    queryKey: ["video", id, "duplicates"],
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/videos/{id}/duplicates", { params: { path: { id } } });
      if (error) throw error;
      return data;
    },
  });
  if (!similar.data || similar.data.items.length === 0) return null;
  return (
    <section aria-label="Similar videos" className="panel">
      <h2>Near-duplicates in your library</h2>
      <ul>
        {similar.data.items.map((item) => (
          <li key={item.video.id}>
            <Link to={`/videos/${item.video.id}`}>{item.video.filename}</Link> — {Math.round(item.score * 100)}% of keyframes alike
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Loudness second by second as a line (−60 LUFS at the bottom, 0 at the top); a click seeks. */
function Loudness({ curve, duration, seek }: { curve: number[]; duration: number; seek: (time: number) => void }) {
  const floor = -60;
  const points = curve
    .map((lufs, second) => `${((second + 0.5) / duration) * 1000},${40 - (Math.max(floor, Math.min(0, lufs)) - floor) / (-floor) * 40}`)
    .join(" ");
  return (
    <svg
      className="loudness"
      viewBox="0 0 1000 40"
      preserveAspectRatio="none"
      role="img"
      aria-label={`Loudness from ${Math.min(...curve).toFixed(0)} to ${Math.max(...curve).toFixed(0)} LUFS`}
      onClick={(event) => {
        const box = event.currentTarget.getBoundingClientRect();
        seek(((event.clientX - box.left) / box.width) * duration);
      }}
    >
      <polyline points={points} fill="none" vectorEffect="non-scaling-stroke" />
    </svg>
  );
}

export function VideoPage() {
  useLiveEvents();
  const { id = "" } = useParams();
  const [params] = useSearchParams();
  const player = useRef<HTMLVideoElement>(null);
  const navigate = useNavigate();
  const queries = useQueryClient();
  const live = useProgress(id);
  const [now, setNow] = useState(0);
  const [preview, setPreview] = useState<{ left: number; shot: Insights["shots"][number] } | null>(null);
  const [track, setTrack] = useState(0);
  const providers = useProviders();
  const offered = providers.data && providers.data.available.length > 0 ? providers.data : undefined;
  const video = useQuery({
    queryKey: ["video", id],
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/videos/{id}", { params: { path: { id } } });
      if (error) throw error;
      return data;
    },
  });
  const insights = useQuery({
    queryKey: ["video", id, "insights"],
    enabled: video.data?.status === "ready",
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/videos/{id}/insights", { params: { path: { id } } });
      if (error) throw error;
      return data;
    },
  });
  const start = Number(params.get("t") ?? "");
  useEffect(() => {
    if (player.current && Number.isFinite(start) && start > 0) player.current.currentTime = start;
  }, [start, video.data?.id]);

  if (video.isPending) return <main className="page" aria-busy="true">Loading…</main>;
  if (video.error) return <main className="page"><p role="alert" className="error">{errorMessage(video.error)}</p><Link to="/">Back to the library</Link></main>;
  const data = video.data;
  const duration = data.media.duration || 1;
  const seek = (time: number) => {
    if (player.current) {
      // from a panel far down the page: bring the player back into view first
      const box = player.current.getBoundingClientRect();
      if (box.bottom < 0 || box.top > window.innerHeight) player.current.scrollIntoView({ block: "nearest", behavior: "smooth" });
      player.current.currentTime = time;
      setNow(time);
      void player.current.play().catch(() => undefined);
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete “${data.filename}” and everything found in it? This cannot be undone.`)) return;
    const { error } = await api.DELETE("/api/v1/videos/{id}", { params: { path: { id } } });
    if (error) return window.alert(errorMessage(error));
    queries.removeQueries({ queryKey: ["video", id] });
    await queries.invalidateQueries({ queryKey: ["videos"] });
    navigate("/");
  };
  const reanalyse = async () => {
    const { error } = await api.POST("/api/v1/videos/{id}/analyses", { params: { path: { id } } });
    if (error) window.alert(errorMessage(error));
    await queries.invalidateQueries({ queryKey: ["video", id] });
  };
  const percent = (time: number) => `${Math.min(100, (time / duration) * 100)}%`;
  const band = (segments: Segment[] | undefined, kind: string, label: string) =>
    (segments ?? []).map((segment, index) => (
      <button
        key={`${kind}-${index}`}
        type="button"
        className={`segment ${kind}`}
        style={{ left: percent(segment.start), width: `${Math.max(0.5, ((segment.end - segment.start) / duration) * 100)}%` }}
        title={`${label} ${clock(segment.start)}–${clock(segment.end)}`}
        aria-label={`${label} from ${clock(segment.start)} to ${clock(segment.end)}`}
        onClick={() => seek(segment.start)}
      />
    ));
  const found = insights.data;
  const tracks = found?.captions ?? [];
  const shownTrack = tracks[Math.min(track, Math.max(0, tracks.length - 1))];
  // what the local OCR read and what a model read, in time order
  const onScreen = [...(found?.ocr ?? []).map((line) => ({ ...line, source: undefined, model: undefined })), ...(found?.text ?? [])].sort((a, b) => a.start - b.start);
  const portrait = data.media.display_height > data.media.display_width;
  const base = `/api/v1/videos/${id}`;

  return (
    <main className="page">
      <h1>{data.filename}</h1>
      <p className="meta">
        {clock(data.media.duration)} · {data.media.display_width}×{data.media.display_height} · {data.media.video_codec}
        {" · "}<span className={`badge ${data.status}`}>{data.status}</span>
        {data.status === "processing" && <> {live ?? data.progress}%</>}
        {data.error && <> — {data.error.message}</>}
      </p>
      <div className="watch">
        <video
          ref={player}
          className={portrait ? "player portrait" : "player"}
          src={`${base}/content`}
          controls
          preload="metadata"
          onTimeUpdate={(event) => setNow(event.currentTarget.currentTime)}
          style={{ aspectRatio: `${data.media.display_width} / ${data.media.display_height}` }}
        >
          {data.status === "ready" && <track kind="chapters" src={`${base}/insights.vtt`} default />}
          {tracks.map((caption, index) => (
            <track key={caption.stream} kind="captions" src={`${base}/captions.vtt?track=${caption.stream}`} srcLang={caption.language ?? undefined} label={caption.title ?? caption.language ?? `Track ${index + 1}`} />
          ))}
        </video>
        {(shownTrack || (found?.transcript ?? []).length > 0) && (
          <div className="side">
            {shownTrack && (
              <section aria-label="Captions" className="panel">
                <div className="row tight">
                  <h2>Captions</h2>
                  {tracks.length > 1 && (
                    <label className="inline">Track
                      <select value={track} onChange={(event) => setTrack(Number(event.target.value))}>
                        {tracks.map((caption, index) => <option key={caption.stream} value={index}>{caption.title ?? caption.language ?? `Track ${index + 1}`}</option>)}
                      </select>
                    </label>
                  )}
                </div>
                <FollowAlong items={shownTrack.cues} now={now} seek={seek} />
              </section>
            )}
            {found && <TranscriptPanel insights={found} now={now} seek={seek} />}
          </div>
        )}
      </div>
      {data.status === "ready" && !found && <div className="timeline placeholder" aria-busy="true" />}
      {found && (
        <>
          <section aria-label="Timeline" className="timeline" onMouseLeave={() => setPreview(null)}>
            <div className="playhead" style={{ left: percent(now) }} aria-hidden="true" />
            <ChapterLane chapters={found.chapters ?? []} duration={duration} seek={seek} />
            <div className="lane" data-lane="shots" title="Shots">
              {found.shots.map((shot) => (
                <button
                  key={`shot-${shot.index}`}
                  type="button"
                  className="segment shot"
                  style={{ left: percent(shot.start), width: `${Math.max(0.5, ((shot.end - shot.start) / duration) * 100)}%` }}
                  aria-label={`Shot ${shot.index + 1} from ${clock(shot.start)} to ${clock(shot.end)}`}
                  onMouseEnter={() => setPreview({ left: ((shot.start + shot.end) / 2 / duration) * 100, shot })}
                  onFocus={() => setPreview({ left: ((shot.start + shot.end) / 2 / duration) * 100, shot })}
                  onBlur={() => setPreview(null)}
                  onClick={() => seek(shot.start)}
                />
              ))}
            </div>
            {found.transitions.some((t) => t.kind !== "cut") && (
              <div className="lane" data-lane="transitions" title="Dissolves and fades">
                {band(found.transitions.filter((t) => t.kind !== "cut"), "gradual", "Dissolve or fade")}
              </div>
            )}
            {(found.scenes ?? []).length > 1 && (
              <div className="lane" data-lane="scenes" title="Scenes">{band(found.scenes, "scene", "Scene")}</div>
            )}
            <div className="lane" data-lane="black" title="Black frames">{band(found.black, "black", "Black")}</div>
            {(found.freeze ?? []).length > 0 && <div className="lane" data-lane="freeze" title="Frozen picture">{band(found.freeze, "freeze", "Frozen picture")}</div>}
            <div className="lane" data-lane="silence" title="Silence">{band(found.silence, "silence", "Silence")}</div>
            {shownTrack && <div className="lane" data-lane="captions" title="Captions">{band(shownTrack.cues, "caption", "Caption")}</div>}
            {(found.transcript ?? []).length > 0 && <div className="lane" data-lane="transcript" title="Speech">{band(found.transcript, "speech", "Speech")}</div>}
            <ModerationLane flags={found.moderation ?? []} duration={duration} seek={seek} />
            {found.loudness && (found.loudness.curve ?? []).length > 1 && <Loudness curve={found.loudness.curve ?? []} duration={duration} seek={seek} />}
            {preview?.shot.keyframe && (
              <figure className="preview" style={{ left: `clamp(0%, calc(${preview.left}% - 5rem), calc(100% - 10rem))` }} aria-hidden="true">
                <img src={`${base}/keyframes/${preview.shot.keyframe}`} alt="" width={160} height={90} />
                <figcaption>Shot {preview.shot.index + 1} · {clock(preview.shot.start)}</figcaption>
              </figure>
            )}
            <p className="legend meta">
              {[
                ["chapter", "chapters", (found.chapters ?? []).length > 0],
                ["shot", "shots", true],
                ["gradual", "dissolves and fades", found.transitions.some((t) => t.kind !== "cut")],
                ["scene", "scenes", (found.scenes ?? []).length > 1],
                ["black", "black", true],
                ["freeze", "frozen", (found.freeze ?? []).length > 0],
                ["silence", "silence", true],
                ["caption", "captions", Boolean(shownTrack)],
                ["speech", "speech", (found.transcript ?? []).length > 0],
                ["flag", "moderation flags", (found.moderation ?? []).length > 0],
                ["loudness", "loudness", (found.loudness?.curve ?? []).length > 1],
              ]
                .filter(([, , shown]) => shown)
                .map(([key, text]) => <span key={String(key)} className="entry"><span className={`key ${key}`} /> {text}</span>)}
            </p>
          </section>
          <ProviderPanels insights={found} now={now} seek={seek} />
          {offered && <AskPanel videoId={id} providers={offered} seek={seek} ready={data.status === "ready"} />}
          <section aria-label="Keyframes">
            <ul className="strip">
              {found.shots.filter((shot) => shot.keyframe).map((shot) => (
                <li key={shot.index}>
                  <button type="button" onClick={() => seek(shot.start)} aria-label={`Keyframe of shot ${shot.index + 1} at ${clock(shot.start)}`}>
                    <img src={`${base}/keyframes/${shot.keyframe}`} alt="" loading="lazy" width={160} height={90} />
                    <span className="swatches" aria-hidden="true">{(shot.colors ?? []).map((color) => <i key={color.hex} style={{ background: color.hex, flexGrow: color.share }} />)}</span>
                    <span>{clock(shot.start)}</span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
          {onScreen.length > 0 && (
            <section aria-label="On-screen text" className="panel">
              <h2>On-screen text</h2>
              <ul className="cues">
                {onScreen.map((line, index) => (
                  <li key={index}>
                    <button type="button" className="cue" onClick={() => seek(line.start)}>
                      <span className="time">{clock(line.start)}–{clock(line.end)}</span> <span>{line.text}</span>
                      {line.source && line.source !== "local" && <> <SourceBadge source={line.source} model={line.model} /></>}
                    </button>
                  </li>
                ))}
              </ul>
            </section>
          )}
          <section aria-label="Technical cues" className="panel">
            <h2>Technical cues</h2>
            <dl className="facts">
              <dt>Shots</dt><dd>{found.shots.length} ({found.transitions.length} transitions)</dd>
              <dt>Transitions</dt><dd>{(["cut", "dissolve", "fade_in", "fade_out"] as const).map((kind) => `${found.transitions.filter((t) => t.kind === kind).length} ${kind.replace("_", " ")}`).join(" · ")}</dd>
              <dt>Scenes</dt><dd>{(found.scenes ?? []).length}</dd>
              <dt>Frozen</dt><dd>{(found.freeze ?? []).length ? (found.freeze ?? []).map((s) => `${clock(s.start)}–${clock(s.end)}`).join(", ") : "none"}</dd>
              <dt>Black</dt><dd>{found.black.length ? found.black.map((s) => `${clock(s.start)}–${clock(s.end)}`).join(", ") : "none"}</dd>
              <dt>Silence</dt><dd>{found.silence.length ? found.silence.map((s) => `${clock(s.start)}–${clock(s.end)}`).join(", ") : "none"}</dd>
              <dt>Loudness</dt><dd>{found.loudness ? `${found.loudness.integrated_lufs.toFixed(1)} LUFS · range ${found.loudness.lra.toFixed(1)} LU · peak ${found.loudness.true_peak_dbtp.toFixed(1)} dBTP` : "no audio"}</dd>
              <dt>Picture</dt><dd>{data.media.width}×{data.media.height} stored, {data.media.display_aspect} shown{data.media.rotation ? `, rotated ${data.media.rotation}°` : ""} · {data.media.fps.toFixed(2)} fps{data.media.variable_frame_rate ? " (variable)" : ""}</dd>
              <dt>Container</dt><dd>{data.media.container} · {data.media.video_codec}{data.media.audio_codec ? ` + ${data.media.audio_codec}` : ""}</dd>
            </dl>
          </section>
        </>
      )}
      {found && <ProviderRuns runs={found.providers ?? []} />}
      {found && <Similar id={id} />}
      <section aria-label="Actions" className="row">
        {data.status === "ready" && (
          <>
            <a href={`${base}/insights`} download={`${data.filename}.insights.json`}>Export JSON</a>
            <a href={`${base}/insights.vtt`} download={`${data.filename}.vtt`}>Export WebVTT</a>
            <a href={`${base}/insights.csv`} download={`${data.filename}.csv`}>Export CSV</a>
            {shownTrack && <a href={`${base}/captions.srt?track=${shownTrack.stream}`} download={`${data.filename}.srt`}>Export SRT</a>}
          </>
        )}
        {offered ? (
          <AnalyseDialog videoId={id} duration={data.media.duration} providers={offered} disabled={data.status === "processing"} onQueued={() => queries.invalidateQueries({ queryKey: ["video", id] })} />
        ) : (
          <button type="button" onClick={reanalyse} disabled={data.status === "processing"}>Analyse again</button>
        )}
        <button type="button" className="danger" onClick={remove}>Delete</button>
      </section>
    </main>
  );
}
