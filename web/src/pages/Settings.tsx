import { FormEvent, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, errorMessage } from "../api/client";
import { bytes } from "../format";
import { tokens, usd } from "../providers";
import { useMe, useProviders } from "../session";

function Password() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [message, setMessage] = useState<string>();
  const queries = useQueryClient();
  async function submit(event: FormEvent) {
    event.preventDefault();
    const { error } = await api.POST("/api/v1/auth/password", { body: { current_password: current, new_password: next } });
    if (error) return setMessage(errorMessage(error));
    setMessage("Password changed. Sign in again with the new one.");
    await queries.invalidateQueries({ queryKey: ["me"] });
  }
  return (
    <form onSubmit={submit} className="stack" aria-label="Password">
      <h2>Password</h2>
      <label>Current password<input type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} /></label>
      <label>New password<input type="password" autoComplete="new-password" minLength={10} required value={next} onChange={(e) => setNext(e.target.value)} /></label>
      {message && <p role="status">{message}</p>}
      <button type="submit">Change password</button>
    </form>
  );
}

function TwoFactor({ enabled }: { enabled: boolean }) {
  const [enrollment, setEnrollment] = useState<{ secret: string; qr_svg: string; otpauth_uri: string }>();
  const [code, setCode] = useState("");
  const [password, setPassword] = useState("");
  const [codes, setCodes] = useState<string[]>();
  const [message, setMessage] = useState<string>();
  const queries = useQueryClient();
  const start = async () => {
    const { data, error } = await api.POST("/api/v1/auth/mfa/totp");
    if (error) return setMessage(errorMessage(error));
    setEnrollment(data);
  };
  const confirm = async (event: FormEvent) => {
    event.preventDefault();
    const { data, error } = await api.POST("/api/v1/auth/mfa/totp/confirm", { body: { code } });
    if (error) return setMessage(errorMessage(error));
    setCodes(data.recovery_codes);
    setEnrollment(undefined);
    await queries.invalidateQueries({ queryKey: ["me"] });
  };
  const disable = async (event: FormEvent) => {
    event.preventDefault();
    const { error } = await api.POST("/api/v1/auth/mfa/totp/disable", { body: { password, code } });
    if (error) return setMessage(errorMessage(error));
    setMessage("Two-factor authentication is off.");
    await queries.invalidateQueries({ queryKey: ["me"] });
  };
  return (
    <section aria-label="Two-factor authentication" className="stack">
      <h2>Two-factor authentication</h2>
      {codes && (
        <div role="status">
          <p>On. Keep these recovery codes somewhere safe: each signs you in once if you lose your device. They are not shown again.</p>
          <ul className="codes">{codes.map((recovery) => <li key={recovery}><code>{recovery}</code></li>)}</ul>
        </div>
      )}
      {!enabled && !enrollment && !codes && <button type="button" onClick={start}>Set up an authenticator app</button>}
      {enrollment && (
        <form onSubmit={confirm} className="stack">
          <p>Scan this code with your authenticator app, or enter the key <code>{enrollment.secret}</code>.</p>
          <img src={`data:image/svg+xml;utf8,${encodeURIComponent(enrollment.qr_svg)}`} alt="QR code for the authenticator app" width={200} height={200} />
          <label>Code from the app<input inputMode="numeric" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} /></label>
          <button type="submit">Turn on</button>
        </form>
      )}
      {enabled && !codes && (
        <form onSubmit={disable} className="stack">
          <label>Password<input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} /></label>
          <label>Code (or a recovery code)<input required value={code} onChange={(e) => setCode(e.target.value)} /></label>
          <button type="submit">Turn off</button>
        </form>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function Keys() {
  const [name, setName] = useState("");
  const [write, setWrite] = useState(true);
  const [secret, setSecret] = useState<string>();
  const [message, setMessage] = useState<string>();
  const keys = useQuery({
    queryKey: ["keys"],
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/api-keys");
      if (error) throw error;
      return data;
    },
  });
  const create = async (event: FormEvent) => {
    event.preventDefault();
    const { data, error } = await api.POST("/api/v1/api-keys", { body: { name, scopes: write ? ["read", "write"] : ["read"] } });
    if (error) return setMessage(errorMessage(error));
    setSecret(data.secret);
    setName("");
    await keys.refetch();
  };
  const revoke = async (id: string) => {
    const { error } = await api.DELETE("/api/v1/api-keys/{id}", { params: { path: { id } } });
    if (error) return setMessage(errorMessage(error));
    await keys.refetch();
  };
  return (
    <section aria-label="API keys" className="stack">
      <h2>API keys</h2>
      <form onSubmit={create} className="row">
        <label className="grow">Name<input required value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. nightly import" /></label>
        <label><input type="checkbox" checked={write} onChange={(e) => setWrite(e.target.checked)} /> can upload and change</label>
        <button type="submit">Create key</button>
      </form>
      {secret && <p role="status">Copy this key now, it is not shown again: <code className="secret">{secret}</code></p>}
      {message && <p role="alert" className="error">{message}</p>}
      <ul className="keys">
        {keys.data?.map((key) => (
          <li key={key.id}>
            <code>vsk_{key.prefix}_…</code> {key.name} · {key.scopes.join(", ")}
            {key.last_used_at ? ` · used ${new Date(key.last_used_at).toLocaleString()}` : " · never used"}
            {key.revoked_at ? " · revoked" : <button type="button" className="link" onClick={() => revoke(key.id)}>Revoke</button>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function YourData() {
  const providers = useProviders();
  const usage = useQuery({
    queryKey: ["usage"],
    queryFn: async () => {
      const { data, error } = await api.GET("/api/v1/users/me/usage");
      if (error) throw error;
      return data;
    },
  });
  const remove = async () => {
    if (!window.confirm("Delete your account, every video and everything found in them? This cannot be undone.")) return;
    const { error } = await api.DELETE("/api/v1/users/me");
    if (error) return window.alert(errorMessage(error));
    window.location.assign("/signin");
  };
  return (
    <section aria-label="Your data" className="stack">
      <h2>Your data</h2>
      {usage.data && (
        <p>
          {usage.data.videos} videos, {bytes(usage.data.storage_bytes)}
          {usage.data.storage_limit_bytes != null && ` of ${bytes(usage.data.storage_limit_bytes)}`} stored;{" "}
          {usage.data.analysis_minutes} minutes analysed in {usage.data.period}
          {usage.data.analysis_limit_minutes != null && ` of ${usage.data.analysis_limit_minutes}`}.
        </p>
      )}
      {usage.data && ((providers.data?.available.length ?? 0) > 0 || usage.data.provider_tokens > 0 || usage.data.provider_tokens_limit != null) && (
        <div className="provider-usage">
          <p>
            Analysis providers (Gemini, OpenAI-compatible models): {tokens(usage.data.provider_tokens)} tokens
            {usage.data.provider_tokens_limit != null ? ` of ${tokens(usage.data.provider_tokens_limit)}` : ""} in {usage.data.period}, costing {usd(usage.data.provider_cost_usd)}
            {usage.data.provider_tokens_limit == null ? " (no monthly limit)" : ""}.
          </p>
          {usage.data.provider_tokens_limit != null && usage.data.provider_tokens_limit > 0 && (
            <>
              <meter
                min={0}
                max={usage.data.provider_tokens_limit}
                low={usage.data.provider_tokens_limit * 0.75}
                high={usage.data.provider_tokens_limit * 0.9}
                optimum={0}
                value={Math.min(usage.data.provider_tokens, usage.data.provider_tokens_limit)}
                aria-label="Provider tokens used this month"
              />
              {usage.data.provider_tokens >= usage.data.provider_tokens_limit && (
                <p className="error">The budget is spent: analyses with a provider are refused until next month.</p>
              )}
            </>
          )}
        </div>
      )}
      <p><a href="/api/v1/users/me/export" download>Download everything we hold about you</a> (JSON)</p>
      <button type="button" className="danger" onClick={remove}>Delete my account</button>
    </section>
  );
}

export function Settings() {
  const me = useMe();
  if (!me.data) return null;
  return (
    <main className="page narrow">
      <h1>Settings</h1>
      <section aria-label="Profile" className="stack">
        <h2>Profile</h2>
        <dl className="facts">
          <dt>Email</dt><dd>{me.data.email}</dd>
          <dt>Role</dt><dd>{me.data.role === "admin" ? "administrator" : "member"}</dd>
          <dt>Two-factor</dt><dd>{me.data.mfa_enabled ? "on" : "off"}</dd>
          <dt>Member since</dt><dd>{new Date(me.data.created_at).toLocaleDateString()}</dd>
        </dl>
      </section>
      <Password />
      <TwoFactor enabled={me.data.mfa_enabled} />
      <Keys />
      <YourData />
    </main>
  );
}
