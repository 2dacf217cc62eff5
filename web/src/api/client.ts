// The typed API client: paths and bodies come from docs/openapi.json (openapi-typescript), so
// the UI cannot drift from the API. The browser session lives in httpOnly cookies; writes
// carry the CSRF token (the readable `vs_csrf` cookie), and a 401 refreshes the session once
// and retries.
import createClient from "openapi-fetch";
import type { paths, components } from "./schema";

export type Video = components["schemas"]["Video"];
export type User = components["schemas"]["User"];
export type ApiKey = components["schemas"]["ApiKey"];
export type UserEvent = components["schemas"]["UserEvent"];
export type Insights = components["schemas"]["Insights"];
export type Cue = components["schemas"]["Cue"];
export type Source = components["schemas"]["Source"];
export type Feature = components["schemas"]["Feature"];
export type MediaResolution = components["schemas"]["MediaResolution"];
export type AnalysisOptions = components["schemas"]["AnalysisOptions"];
export type AskRequest = components["schemas"]["AskRequest"];
export type Providers = components["schemas"]["ProvidersResponse"];
export type TokenUsage = components["schemas"]["TokenUsage"];
export type ProviderRun = components["schemas"]["ProviderRun"];
export type Chapter = components["schemas"]["Chapter"];
export type TranscriptSegment = components["schemas"]["TranscriptSegment"];
export type Label = components["schemas"]["Label"];
export type ModerationFlag = components["schemas"]["ModerationFlag"];

export function cookie(name: string): string | undefined {
  return document.cookie
    .split(";")
    .map((pair) => pair.trim().split("="))
    .find(([key]) => key === name)?.[1];
}

/** Headers every write needs when the session is in cookies. */
export function csrfHeaders(): Record<string, string> {
  const token = cookie("vs_csrf");
  return token ? { "X-CSRF-Token": token } : {};
}

let refreshing: Promise<boolean> | null = null;

/** Trades the refresh cookie for a new session, once however many requests ask. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= fetch("/api/v1/auth/refresh", {
    method: "POST",
    credentials: "include",
    headers: csrfHeaders(),
  })
    .then((response) => response.ok)
    .catch(() => false)
    .finally(() => {
      setTimeout(() => (refreshing = null), 0);
    });
  return refreshing;
}

function withCsrf(request: Request): Request {
  if (["GET", "HEAD", "OPTIONS"].includes(request.method)) return request;
  const headers = new Headers(request.headers);
  for (const [name, value] of Object.entries(csrfHeaders())) headers.set(name, value);
  return new Request(request, { headers });
}

async function sessionFetch(request: Request): Promise<Response> {
  const retry = request.clone();
  const response = await fetch(withCsrf(request));
  const path = new URL(request.url, location.origin).pathname;
  if (response.status === 401 && !path.startsWith("/api/v1/auth/")) {
    if (await refreshSession()) return fetch(withCsrf(retry));
  }
  return response;
}

export const api = createClient<paths>({
  baseUrl: "",
  credentials: "include",
  fetch: sessionFetch,
});

type ErrorBody = { error?: { code?: string; message?: string } };

/** What to tell people about a failed call: the API's message, or what to try. */
export function errorMessage(error: unknown): string {
  const body = error as ErrorBody | undefined;
  if (body?.error?.message) return body.error.message;
  if (error instanceof Error) return `${error.message}. Check your connection and try again.`;
  return "Something went wrong. Try again in a moment.";
}

export function errorCode(error: unknown): string | undefined {
  return (error as ErrorBody | undefined)?.error?.code;
}
