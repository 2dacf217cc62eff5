import { useQuery } from "@tanstack/react-query";
import { api, errorMessage } from "../api/client";
import { bytes } from "../format";

export function Admin() {
  const queue = useQuery({
    queryKey: ["admin", "queue"],
    refetchInterval: 5000,
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/admin/queue");
      if (error) throw error;
      return data;
    },
  });
  const failed = useQuery({
    queryKey: ["admin", "failed"],
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/admin/jobs/failed");
      if (error) throw error;
      return data;
    },
  });
  const usage = useQuery({
    queryKey: ["admin", "usage"],
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/admin/usage");
      if (error) throw error;
      return data;
    },
  });
  const retry = async (id: string) => {
    const { error } = await api.POST("/api/v1/admin/jobs/{id}/retry", { params: { path: { id } } });
    if (error) window.alert(errorMessage(error));
    await failed.refetch();
  };
  return (
    <main className="page">
      <h1>Admin</h1>
      <section aria-label="Queue">
        <h2>Queue and workers</h2>
        {queue.data && (
          <p>
            {queue.data.ready} waiting (oldest {queue.data.oldest_ready_age_seconds.toFixed(0)} s) · {queue.data.running} running ·{" "}
            {queue.data.dead} failed · {queue.data.workers} workers running {queue.data.jobs_in_flight} jobs
          </p>
        )}
      </section>
      <section aria-label="Failed jobs">
        <h2>Failed jobs</h2>
        {failed.data?.length === 0 && <p>None.</p>}
        <ul>
          {failed.data?.map((job) => (
            <li key={job.id}>
              {job.video_id} · {job.attempts} attempts · {job.last_error} · {new Date(job.failed_at).toLocaleString()}{" "}
              <button type="button" onClick={() => retry(job.id)}>Retry</button>
            </li>
          ))}
        </ul>
      </section>
      <section aria-label="Usage">
        <h2>Accounts and usage</h2>
        <table>
          <thead><tr><th scope="col">Account</th><th scope="col">Role</th><th scope="col">Videos</th><th scope="col">Stored</th><th scope="col">Minutes this month</th></tr></thead>
          <tbody>
            {usage.data?.items.map(({ user, usage: used }) => (
              <tr key={user.id}>
                <td>{user.email}{user.disabled && " (disabled)"}</td>
                <td>{user.role}</td>
                <td>{used.videos}</td>
                <td>{bytes(used.storage_bytes)}</td>
                <td>{used.analysis_minutes}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </main>
  );
}
