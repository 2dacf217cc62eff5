import { FormEvent, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";
import { useQueryClient } from "@tanstack/react-query";
import { api, errorCode, errorMessage } from "../api/client";

export function SignIn() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [needsCode, setNeedsCode] = useState(false);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const queries = useQueryClient();
  const navigate = useNavigate();
  const from = (useLocation().state as { from?: string } | null)?.from ?? "/";

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const { error } = await api.POST("/api/v1/auth/login", {
      body: { email, password, totp: needsCode ? totp : undefined, cookie: true },
    });
    setBusy(false);
    if (error) {
      if (errorCode(error) === "mfa-required") {
        setNeedsCode(true);
        setError("Enter the 6-digit code from your authenticator app (or a recovery code).");
        return;
      }
      setError(errorMessage(error));
      return;
    }
    await queries.invalidateQueries({ queryKey: ["me"] });
    navigate(from, { replace: true });
  }

  return (
    <main className="page narrow">
      <h1>Sign in</h1>
      <form onSubmit={submit} className="stack">
        <label>Email<input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} /></label>
        <label>Password<input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} /></label>
        {needsCode && (
          <label>Two-factor code<input name="totp" inputMode="numeric" autoComplete="one-time-code" autoFocus required value={totp} onChange={(e) => setTotp(e.target.value)} /></label>
        )}
        {error && <p role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
      <p>New here? <Link to="/signup">Create an account</Link></p>
    </main>
  );
}

export function SignUp() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const queries = useQueryClient();
  const navigate = useNavigate();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const created = await api.POST("/api/v1/auth/register", { body: { email, password } });
    if (created.error) {
      setBusy(false);
      setError(errorMessage(created.error));
      return;
    }
    const signedIn = await api.POST("/api/v1/auth/login", { body: { email, password, cookie: true } });
    setBusy(false);
    if (signedIn.error) {
      setError(errorMessage(signedIn.error));
      return;
    }
    await queries.invalidateQueries({ queryKey: ["me"] });
    navigate("/", { replace: true });
  }

  return (
    <main className="page narrow">
      <h1>Create an account</h1>
      <form onSubmit={submit} className="stack">
        <label>Email<input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} /></label>
        <label>Password <small>(at least 10 characters)</small>
          <input type="password" autoComplete="new-password" minLength={10} required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {error && <p role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create account"}</button>
      </form>
      <p>Have an account? <Link to="/signin">Sign in</Link></p>
    </main>
  );
}
