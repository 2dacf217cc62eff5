import { useEffect, useRef } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, errorMessage } from "../api/client";
import { clock } from "../format";
import { useLiveEvents, useProgress } from "../live";

type Segment = { start: number; end: number };
type Insights = {
  shots: (Segment & { index: number; keyframe?: string })[];
  transitions?: { time?: number; at?: number }[];
  black?: Segment[];
  silence?: Segment[];
};

export function VideoPage() {
  useLiveEvents();
  const { id = "" } = useParams();
  const [params] = useSearchParams();
  const player = useRef<HTMLVideoElement>(null);
  const navigate = useNavigate();
  const queries = useQueryClient();
  const live = useProgress(id);
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
      const response = await fetch(`/api/v1/videos/${id}/insights`, { credentials: "include" });
      if (!response.ok) throw await response.json();
      return (await response.json()) as Insights;
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
      player.current.currentTime = time;
      void player.current.play().catch(() => undefined);
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete “${data.filename}” and everything found in it? This cannot be undone.`)) return;
    const { error } = await api.DELETE("/api/v1/videos/{id}", { params: { path: { id } } });
    if (error) return window.alert(errorMessage(error));
    await queries.invalidateQueries({ queryKey: ["videos"] });
    navigate("/");
  };
  const reanalyse = async () => {
    const { error } = await api.POST("/api/v1/videos/{id}/analyses", { params: { path: { id } } });
    if (error) window.alert(errorMessage(error));
    await queries.invalidateQueries({ queryKey: ["video", id] });
  };
  const band = (segments: Segment[] | undefined, kind: string) =>
    (segments ?? []).map((segment, index) => (
      <button
        key={`${kind}-${index}`}
        type="button"
        className={`segment ${kind}`}
        style={{ left: `${(segment.start / duration) * 100}%`, width: `${Math.max(0.5, ((segment.end - segment.start) / duration) * 100)}%` }}
        title={`${kind} ${clock(segment.start)}–${clock(segment.end)}`}
        aria-label={`${kind} from ${clock(segment.start)} to ${clock(segment.end)}`}
        onClick={() => seek(segment.start)}
      />
    ));
  const portrait = data.media.display_height > data.media.display_width;

  return (
    <main className="page">
      <h1>{data.filename}</h1>
      <p className="meta">
        {clock(data.media.duration)} · {data.media.display_width}×{data.media.display_height} · {data.media.video_codec}
        {" · "}<span className={`badge ${data.status}`}>{data.status}</span>
        {data.status === "processing" && <> {live ?? data.progress}%</>}
        {data.error && <> — {data.error.message}</>}
      </p>
      <video
        ref={player}
        className={portrait ? "player portrait" : "player"}
        src={`/api/v1/videos/${id}/content`}
        controls
        preload="metadata"
        style={{ aspectRatio: `${data.media.display_width} / ${data.media.display_height}` }}
      >
        {data.status === "ready" && <track kind="chapters" src={`/api/v1/videos/${id}/insights.vtt`} default />}
      </video>
      {insights.data && (
        <>
          <section aria-label="Timeline" className="timeline">
            <div className="lane" data-lane="shots">{band(insights.data.shots, "shot")}</div>
            <div className="lane" data-lane="black">{band(insights.data.black, "black")}</div>
            <div className="lane" data-lane="silence">{band(insights.data.silence, "silence")}</div>
          </section>
          <section aria-label="Keyframes">
            <ul className="strip">
              {insights.data.shots.filter((shot) => shot.keyframe).map((shot) => (
                <li key={shot.index}>
                  <button type="button" onClick={() => seek(shot.start)} aria-label={`Shot ${shot.index + 1} at ${clock(shot.start)}`}>
                    <img src={`/api/v1/videos/${id}/keyframes/${shot.keyframe}`} alt="" loading="lazy" width={160} height={90} />
                    <span>{clock(shot.start)}</span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        </>
      )}
      <section aria-label="Actions" className="row">
        {data.status === "ready" && (
          <>
            <a href={`/api/v1/videos/${id}/insights`} download={`${data.filename}.insights.json`}>Export JSON</a>
            <a href={`/api/v1/videos/${id}/insights.vtt`} download={`${data.filename}.vtt`}>Export WebVTT</a>
          </>
        )}
        <button type="button" onClick={reanalyse} disabled={data.status === "processing"}>Analyse again</button>
        <button type="button" className="danger" onClick={remove}>Delete</button>
      </section>
    </main>
  );
}
