// Who is signed in: GET /api/v1/users/me (the cookie session; refreshed silently).
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, csrfHeaders } from "./api/client";

export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => {
      const { data, response } = await api.GET("/api/v1/users/me");
      if (response.status === 401) return null;
      if (!data) throw new Error(`the server answered ${response.status}`);
      return data;
    },
    staleTime: 60_000,
  });
}

export function useSignOut() {
  const queries = useQueryClient();
  return async () => {
    await fetch("/api/v1/auth/logout", { method: "POST", credentials: "include", headers: csrfHeaders() });
    // "me" becomes null (the app shows the sign-in page); everything else the account saw
    // is dropped from memory. (`clear()` would detach the observers already rendered.)
    queries.setQueryData(["me"], null);
    queries.removeQueries({ predicate: (query) => query.queryKey[0] !== "me" });
  };
}

/** The analysis providers this server offers (`available` is empty when only the local
 * analyzer runs; then nothing about providers is shown). */
export function useProviders() {
  return useQuery({
    queryKey: ["providers"],
    queryFn: async () => {
      const { data, response } = await api.GET("/api/v1/providers");
      // a server from before providers has no such route: the same as none configured
      if (response.status === 404) return { default: "local" as const, available: [], default_features: [], features: [] };
      if (!data) throw new Error(`the server answered ${response.status}`);
      return data;
    },
    staleTime: 5 * 60_000,
  });
}
