// The account's live events (GET /api/v1/events, Server-Sent Events): progress goes into a
// small store; anything that changes a video refreshes the queries that show it.
import { useEffect, useSyncExternalStore } from "react";
import { useQueryClient } from "@tanstack/react-query";
import type { UserEvent } from "./api/client";

const progress = new Map<string, number>();
const listeners = new Set<() => void>();

function setProgress(videoId: string, value: number | undefined) {
  if (value === undefined) progress.delete(videoId);
  else progress.set(videoId, value);
  listeners.forEach((listener) => listener());
}

export function useProgress(videoId: string): number | undefined {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => progress.get(videoId),
  );
}

/** Opens the event stream while mounted (the browser reconnects with Last-Event-ID). */
export function useLiveEvents() {
  const queries = useQueryClient();
  useEffect(() => {
    const source = new EventSource("/api/v1/events", { withCredentials: true });
    const handle = (message: MessageEvent<string>) => {
      const event = JSON.parse(message.data) as UserEvent;
      if (event.type === "analysis.progress") {
        setProgress(event.video_id, event.progress ?? 0);
        return;
      }
      if (event.type === "analysis.started") setProgress(event.video_id, 0);
      if (["analysis.succeeded", "analysis.failed", "video.deleted"].includes(event.type)) {
        setProgress(event.video_id, undefined);
      }
      void queries.invalidateQueries({ queryKey: ["videos"] });
      void queries.invalidateQueries({ queryKey: ["video", event.video_id] });
    };
    const kinds = [
      "video.uploaded", "video.ready", "video.failed", "video.deleted",
      "analysis.queued", "analysis.started", "analysis.progress", "analysis.succeeded", "analysis.failed",
    ];
    kinds.forEach((kind) => source.addEventListener(kind, handle as EventListener));
    return () => source.close();
  }, [queries]);
}
