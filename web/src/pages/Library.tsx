import { DragEvent, useEffect, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import * as tus from "tus-js-client";
import { api, csrfHeaders, errorMessage, type Video } from "../api/client";
import { bytes, clock, snippetParts, transfer } from "../format";
import { useLiveEvents, useProgress } from "../live";

type Transfer = {
  id: string;
  name: string;
  size: number;
  sent: number;
  started: number;
  state: "sending" | "paused" | "done" | "failed";
  error?: string;
  upload: tus.Upload;
};

type Unfinished = { key: string; url: string; name: string; size: number; sent: number | null; created: string };

/** Uploads a reload (or a closed tab) cut short: tus-js-client remembers their URLs per file,
 * so choosing the same file again resumes at the server's offset. Expired ones are forgotten. */
function useUnfinished(active: string[]) {
  const [unfinished, setUnfinished] = useState<Unfinished[]>([]);
  const refresh = async () => {
    const storage = tus.defaultOptions.urlStorage;
    const stored = await storage.findAllUploads();
    const found: Unfinished[] = [];
    for (const item of stored) {
      if (!item.uploadUrl || active.includes(item.uploadUrl)) continue;
      const head = await fetch(item.uploadUrl, { method: "HEAD", credentials: "include", headers: { "Tus-Resumable": "1.0.0" } }).catch(() => null);
      if (head && (head.status === 404 || head.status === 410)) {
        await storage.removeUpload(item.urlStorageKey);
        continue;
      }
      const offset = head?.headers.get("Upload-Offset");
      found.push({ key: item.urlStorageKey, url: item.uploadUrl, name: item.metadata.filename ?? "a video", size: item.size ?? 0, sent: offset == null ? null : Number(offset), created: item.creationTime });
    }
    setUnfinished(found);
  };
  const discard = async (item: Unfinished) => {
    await tus.Upload.terminate(item.url, { headers: csrfHeaders() }).catch(() => undefined);
    await tus.defaultOptions.urlStorage.removeUpload(item.key);
    setUnfinished((all) => all.filter((other) => other.key !== item.key));
  };
  useEffect(() => {
    void refresh();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [active.join(",")]);
  return { unfinished, discard };
}

function Uploads() {
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const { unfinished, discard } = useUnfinished(transfers.map((item) => item.upload.url ?? "").filter(Boolean));
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const update = (id: string, change: Partial<Transfer>) =>
    setTransfers((all) => all.map((item) => (item.id === id ? { ...item, ...change } : item)));

  function send(files: FileList | null) {
    for (const file of Array.from(files ?? [])) {
      const id = `${file.name}-${file.size}-${Date.now()}`;
      const upload = new tus.Upload(file, {
        endpoint: "/api/v1/uploads",
        chunkSize: 8 * 1024 * 1024,
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
        metadata: { filename: file.name, filetype: file.type },
        headers: csrfHeaders(),
        // resumes after a reload: the upload's URL is remembered per file
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        onProgress: (sent) => update(id, { sent }),
        onSuccess: () => update(id, { state: "done", sent: file.size }),
        onError: (error) => update(id, { state: "failed", error: `${error.message}` }),
      });
      upload.findPreviousUploads().then((previous) => {
        if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      });
      setTransfers((all) => [...all, { id, name: file.name, size: file.size, sent: 0, started: Date.now(), state: "sending", upload }]);
    }
  }

  const drop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    send(event.dataTransfer.files);
  };

  return (
    <section aria-label="Upload">
      <div
        className={`dropzone ${over ? "over" : ""}`}
        onDragOver={(event) => { event.preventDefault(); setOver(true); }}
        onDragLeave={() => setOver(false)}
        onDrop={drop}
      >
        <p>Drop videos here, or</p>
        <button type="button" onClick={() => input.current?.click()}>Choose files</button>
        <input ref={input} type="file" accept="video/*" multiple hidden aria-label="Video files" onChange={(event) => send(event.target.files)} />
      </div>
      {unfinished.length > 0 && (
        <div className="unfinished" role="status">
          <p>Unfinished uploads — choose the same file again to continue where it stopped:</p>
          <ul>
            {unfinished.map((item) => (
              <li key={item.key}>
                <span className="name">{item.name}</span>{" "}
                <span className="meta">{item.sent != null && item.size ? `${Math.floor((item.sent / item.size) * 100)}% of ${bytes(item.size)}` : bytes(item.size)} · started {new Date(item.created).toLocaleString()}</span>{" "}
                <button type="button" className="link" onClick={() => void discard(item)}>Discard</button>
              </li>
            ))}
          </ul>
        </div>
      )}
      {transfers.length > 0 && (
        <ul className="transfers">
          {transfers.map((item) => {
            const { speed, left } = transfer(item.sent, item.size, Date.now() - item.started);
            return (
              <li key={item.id}>
                <span className="name">{item.name}</span>
                <progress max={item.size} value={item.sent} aria-label={`${item.name} upload`} />
                <span className="meta">
                  {item.state === "done" ? "uploaded" : item.state === "failed" ? item.error : `${bytes(item.sent)} of ${bytes(item.size)} · ${speed} · ${left} left`}
                </span>
                {item.state === "sending" && <button type="button" className="link" onClick={() => { void item.upload.abort(); update(item.id, { state: "paused" }); }}>Pause</button>}
                {item.state === "paused" && <button type="button" className="link" onClick={() => { item.upload.start(); update(item.id, { state: "sending", started: Date.now(), sent: item.sent }); }}>Resume</button>}
                {item.state !== "done" && <button type="button" className="link" onClick={() => { void item.upload.abort(true); setTransfers((all) => all.filter((other) => other.id !== item.id)); }}>Cancel</button>}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

function Card({ video }: { video: Video }) {
  const live = useProgress(video.id);
  const progress = live ?? video.progress;
  return (
    <li className="card">
      <Link to={`/videos/${video.id}`}>
        <div className="thumb">
          {video.status === "ready" ? (
            <img src={`/api/v1/videos/${video.id}/keyframes/shot-0001.jpg`} alt="" loading="lazy" width={320} height={180} />
          ) : (
            <span aria-hidden="true">{video.status === "failed" ? "!" : "…"}</span>
          )}
        </div>
        <span className="title">{video.filename}</span>
      </Link>
      <span className="meta">
        {clock(video.media.duration)} · <span className={`badge ${video.status}`}>{video.status}</span>
        {video.status === "processing" && <> {progress}%</>}
      </span>
      {video.status === "processing" && <progress max={100} value={progress} aria-label={`${video.filename} analysis`} />}
    </li>
  );
}

function SearchResults({ query }: { query: string }) {
  const results = useQuery({
    queryKey: ["search", query],
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/search", { params: { query: { q: query } } });
      if (error) throw error;
      return data;
    },
  });
  if (results.isPending) return <p aria-busy="true">Searching…</p>;
  if (results.error) return <p role="alert" className="error">{errorMessage(results.error)}</p>;
  if (results.data.items.length === 0) return <p>Nothing matches “{query}”.</p>;
  return (
    <ul className="results">
      {results.data.items.map((item) => (
        <li key={item.video.id}>
          <Link to={`/videos/${item.video.id}`}>{item.video.filename}</Link>
          <ul>
            {item.matches.map((match, index) => (
              <li key={index}>
                <Link to={`/videos/${item.video.id}${match.start != null ? `?t=${match.start}` : ""}`}>
                  {match.start != null && <span className="time">{clock(match.start)}</span>} <span className="kind">{match.kind}</span>{" "}
                  {snippetParts(match.snippet).map((part, at) => (part.hit ? <mark key={at}>{part.text}</mark> : <span key={at}>{part.text}</span>))}
                </Link>
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}

export function Library() {
  useLiveEvents();
  const [params, setParams] = useSearchParams();
  const query = params.get("q") ?? "";
  const status = params.get("status") ?? "";
  const [draft, setDraft] = useState(query);
  const videos = useInfiniteQuery({
    queryKey: ["videos"],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) => {
      const { data, error } = await api.GET("/api/v1/videos", { params: { query: { limit: 24, after: pageParam } } });
      if (error) throw error;
      return data;
    },
    getNextPageParam: (page) => page.next_cursor ?? undefined,
  });
  const all = videos.data?.pages.flatMap((page) => page.items) ?? [];
  const shown = status ? all.filter((video) => video.status === status) : all;

  return (
    <main className="page">
      <h1>Library</h1>
      <Uploads />
      <form
        role="search"
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          setParams(draft ? { q: draft } : {});
        }}
      >
        <label className="grow">Search titles and what the videos say
          <input type="search" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="e.g. interview" />
        </label>
        <button type="submit">Search</button>
        <label>Status
          <select value={status} onChange={(e) => setParams(e.target.value ? { status: e.target.value } : {})}>
            <option value="">All</option>
            <option value="processing">Processing</option>
            <option value="ready">Ready</option>
            <option value="failed">Failed</option>
          </select>
        </label>
      </form>
      {query ? (
        <SearchResults query={query} />
      ) : videos.isPending ? (
        <p aria-busy="true">Loading…</p>
      ) : videos.error ? (
        <p role="alert" className="error">{errorMessage(videos.error)}</p>
      ) : shown.length === 0 ? (
        <p className="empty">No videos yet. Drop a video file above (or choose one): it is analysed as soon as it arrives, and its shots, keyframes and sound show here.</p>
      ) : (
        <>
          <ul className="grid">{shown.map((video) => <Card key={video.id} video={video} />)}</ul>
          {videos.hasNextPage && <button type="button" onClick={() => videos.fetchNextPage()} disabled={videos.isFetchingNextPage}>More</button>}
        </>
      )}
    </main>
  );
}
