// "Analyse again" with a provider: what to ask for, a custom prompt and its JSON Schema,
// how finely to look. A native modal <dialog>: focus moves into it, Escape closes it,
// focus returns to the button that opened it.
import { FormEvent, useEffect, useId, useRef, useState } from "react";
import { api, errorCode, errorMessage, type Feature, type Providers, type Source } from "../api/client";
import { analysisOptions, FEATURE_LABELS, parseSchema, refusal, type AnalysisForm } from "../providers";

const SCHEMA_EXAMPLE = `{
  "type": "object",
  "properties": {
    "dogs": { "type": "integer" }
  },
  "required": ["dogs"]
}`;

function initialForm(providers: Providers): AnalysisForm {
  // the server's default, as a request without options would get
  const provider: Source = providers.available.some((info) => info.source === providers.default) ? providers.default : "local";
  return {
    provider,
    model: "",
    features: providers.default_features.length ? [...providers.default_features] : ["summary", "chapters"],
    prompt: "",
    schema: "",
    mediaResolution: "",
    fps: "",
    start: "",
    end: "",
    language: "",
  };
}

export function AnalyseDialog({ videoId, duration, providers, disabled, onQueued }: { videoId: string; duration: number; providers: Providers; disabled: boolean; onQueued: () => Promise<void> }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState<AnalysisForm>(() => initialForm(providers));
  const [problems, setProblems] = useState<string[]>([]);
  const [failure, setFailure] = useState<string>();
  const [sending, setSending] = useState(false);
  const [queued, setQueued] = useState<string>();
  const id = useId();
  const features = providers.features.length ? providers.features : (Object.keys(FEATURE_LABELS) as Feature[]);
  const local = form.provider === "local";
  const chosen = providers.available.find((info) => info.source === form.provider);
  const custom = form.features.includes("custom");
  const schemaCheck = parseSchema(form.schema);

  // once a submit showed what to fix, the list follows the form as it is corrected
  useEffect(() => {
    setProblems((shown) => (shown.length ? analysisOptions(form, duration).problems : shown));
  }, [form, duration]);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    if (!open && element.open) element.close();
  }, [open]);

  const set = <K extends keyof AnalysisForm>(key: K, value: AnalysisForm[K]) => setForm((previous) => ({ ...previous, [key]: value }));
  const toggle = (feature: Feature, on: boolean) =>
    setForm((previous) => ({ ...previous, features: on ? [...previous.features, feature].filter((f, i, all) => all.indexOf(f) === i) : previous.features.filter((f) => f !== feature) }));
  const close = () => {
    setOpen(false);
    setProblems([]);
    setFailure(undefined);
    opener.current?.focus();
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setFailure(undefined);
    setQueued(undefined);
    const result = analysisOptions(form, duration);
    setProblems(result.problems);
    if (!result.options) return;
    setSending(true);
    const { error } = await api.POST("/api/v1/videos/{id}/analyses", { params: { path: { id: videoId } }, body: result.options });
    setSending(false);
    if (error) return setFailure(refusal(errorCode(error), errorMessage(error)));
    close();
    setQueued(result.options.provider === "local" ? "Queued: the built-in analysis." : `Queued: ${result.options.provider} will add ${(result.options.features ?? []).map((feature) => (FEATURE_LABELS[feature] ?? feature).toLowerCase()).join(", ")}.`);
    await onQueued();
  };

  return (
    <>
      <button type="button" ref={opener} onClick={() => setOpen(true)} disabled={disabled} aria-haspopup="dialog">Analyse again…</button>
      <span role="status" className="meta">{queued}</span>
      <dialog ref={dialog} className="dialog" aria-labelledby={`${id}-title`} onClose={() => open && close()}>
        <form onSubmit={submit} className="stack" noValidate>
          <div className="row tight">
            <h2 id={`${id}-title`}>Analyse again</h2>
            <button type="button" className="link" onClick={close} aria-label="Close">✕</button>
          </div>
          <p className="meta">The built-in analysis (shots, sound, text on screen) always runs again. A provider adds what it finds, its times checked against the built-in analysis.</p>
          <div className="row">
            <label className="grow">Provider
              <select value={form.provider} onChange={(event) => set("provider", event.target.value as Source)}>
                <option value="local">Built-in analysis only</option>
                {providers.available.map((info) => <option key={info.source} value={info.source}>{info.source} ({info.model})</option>)}
              </select>
            </label>
            <label className="grow">Model
              <input value={form.model} onChange={(event) => set("model", event.target.value)} placeholder={chosen?.model ?? "—"} disabled={local} aria-describedby={`${id}-model`} />
            </label>
          </div>
          <p id={`${id}-model`} className="meta hint">{local ? "No provider: nothing is sent anywhere." : `Empty: ${chosen?.model ?? "the configured model"}.`}</p>
          <fieldset disabled={local} className="features">
            <legend>Ask for</legend>
            {features.map((feature) => (
              <label key={feature} className="check">
                <input type="checkbox" checked={form.features.includes(feature)} onChange={(event) => toggle(feature, event.target.checked)} /> {FEATURE_LABELS[feature] ?? feature}
              </label>
            ))}
          </fieldset>
          {!local && custom && (
            <>
              <label>Custom prompt
                <textarea rows={3} value={form.prompt} onChange={(event) => set("prompt", event.target.value)} placeholder="e.g. How many dogs appear, and when does each first appear?" />
              </label>
              <label><span>JSON Schema of the answer <span className="meta">(optional)</span></span>
                <textarea
                  rows={7}
                  className="code"
                  spellCheck={false}
                  value={form.schema}
                  onChange={(event) => set("schema", event.target.value)}
                  placeholder={SCHEMA_EXAMPLE}
                  aria-invalid={!schemaCheck.ok}
                  aria-describedby={`${id}-schema`}
                />
              </label>
              <p id={`${id}-schema`} className={schemaCheck.ok ? "meta hint" : "error hint"}>
                {!schemaCheck.ok ? schemaCheck.message : schemaCheck.schema ? "A usable schema: the answer will follow it." : "Without a schema the model answers in any JSON it likes."}
              </p>
            </>
          )}
          {form.provider === "gemini" && (
            <label>Media resolution
              <select value={form.mediaResolution} onChange={(event) => set("mediaResolution", event.target.value as AnalysisForm["mediaResolution"])}>
                <option value="">As configured</option>
                <option value="low">Low — 66 tokens a frame, cheapest</option>
                <option value="medium">Medium — 258 tokens a frame</option>
                <option value="high">High — 258 tokens a frame, finest detail</option>
              </select>
            </label>
          )}
          {!local && (
            <details>
              <summary>More options</summary>
              <div className="row">
                <label>From <input value={form.start} onChange={(event) => set("start", event.target.value)} placeholder="0:00" inputMode="decimal" size={7} /></label>
                <label>To <input value={form.end} onChange={(event) => set("end", event.target.value)} placeholder="the end" inputMode="decimal" size={7} /></label>
                {form.provider === "gemini" && <label>Frames a second <input value={form.fps} onChange={(event) => set("fps", event.target.value)} placeholder="1" inputMode="decimal" size={5} /></label>}
                <label>Language <input value={form.language} onChange={(event) => set("language", event.target.value)} placeholder="e.g. en, fr" size={7} /></label>
              </div>
            </details>
          )}
          {problems.length > 0 && (
            <div role="alert" className="error">
              <p>Fix this first:</p>
              <ul>{problems.map((problem) => <li key={problem}>{problem}</li>)}</ul>
            </div>
          )}
          {failure && <p role="alert" className="error">{failure}</p>}
          <div className="row">
            <button type="submit" disabled={sending}>{sending ? "Queuing…" : "Analyse"}</button>
            <button type="button" className="secondary" onClick={close}>Cancel</button>
          </div>
        </form>
      </dialog>
    </>
  );
}
