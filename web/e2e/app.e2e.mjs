// End-to-end: the real server (the debug binary, embedded defaults, a fresh data directory)
// serving the built web app, driven through Debian's Chromium by playwright-core.
//
//   node e2e/app.e2e.mjs            (from web/, after `npm run build` and `cargo build`)
//
// Environment: VIDSIGHT_BIN (default ../target/debug/vidsight), CHROMIUM (default
// /usr/bin/chromium), MEDIA_DIR (default ../../shared/media), E2E_ARTIFACTS (default
// ../target/e2e: screenshots, the server's log, the downloaded export), E2E_PROVIDERS
// (default on: the fake Gemini of crates/vidsight-providers/examples/fake_gemini.rs is
// built with cargo and the server pointed at it, so the provider panels, the analysis
// dialog and the questions are exercised; `0` leaves providers out, and a failed build
// skips that part, saying so).
import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { createRequire } from "node:module";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core's WCAG 2.1 A/AA rules on the page as it is: the serious and critical findings. */
async function accessibilityProblems(page) {
  // evaluated through the debugging protocol, so the page's CSP (no inline scripts) holds
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
  return result.violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => `${violation.id} (${violation.impact}): ${violation.help} — ${violation.nodes.slice(0, 3).map((node) => node.target.join(" ")).join(", ")}`);
}

const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, "..");
const binary = resolve(web, process.env.VIDSIGHT_BIN ?? "../target/debug/vidsight");
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const media = resolve(web, process.env.MEDIA_DIR ?? "../../shared/media");
const artifacts = resolve(web, process.env.E2E_ARTIFACTS ?? "../target/e2e");
const EMAIL = "ada@example.test";
const PASSWORD = "correct horse battery staple";
// a word only the captions of the second clip contain
const WORD = "lighthouse";

const started = Date.now();
const step = (text) => console.log(`e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s  ${text}`);

for (const [what, path] of [["the vidsight binary (cargo build --bin vidsight)", binary], ["the built web app (npm run build)", join(web, "dist/index.html")], ["Chromium (scripts/install-deps.sh --test)", browserPath]]) {
  if (!existsSync(path)) {
    console.error(`e2e: ${what} is missing at ${path}`);
    process.exit(1);
  }
}
if (!existsSync(join(media, "bikes.mp4")) || !existsSync(join(media, "bigbuckbunny.mp4"))) {
  console.log(`e2e: SKIPPED — the real clips are not at ${media} (set MEDIA_DIR)`);
  process.exit(0);
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s): what an authenticator app shows at `time`. */
function totp(base32, time = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of base32.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(time / 1000 / 30)));
  const hmac = createHmac("sha1", key).update(counter).digest();
  const offset = hmac[hmac.length - 1] & 0xf;
  return String((hmac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

const freePort = () =>
  new Promise((done) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });

mkdirSync(artifacts, { recursive: true });
rmSync(join(artifacts, "failure.png"), { force: true });
const work = mkdtempSync(join(tmpdir(), "vidsight-e2e-"));
// the second clip: real footage with a subtitle track muxed in (stream copy), so the
// analysis has words to find; the shared clips carry no text
const captioned = join(work, "bikes-captioned.mp4");
writeFileSync(join(work, "bikes.srt"), `1\n00:00:00,400 --> 00:00:03,000\nTwo riders leave the harbour\n\n2\n00:00:03,200 --> 00:00:06,500\nand race towards the ${WORD}.\n\n3\n00:00:06,800 --> 00:00:09,500\n<i>The finish line is near.</i>\n\n`);
execFileSync("ffmpeg", ["-v", "error", "-y", "-i", join(media, "bikes.mp4"), "-i", join(work, "bikes.srt"), "-map", "0:v", "-map", "1", "-c:v", "copy", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=English", captioned]);

// the fake Gemini (a canned responder behind the real wire protocol), when it can be built
let gemini;
let geminiUrl;
const geminiOutput = [];
if (process.env.E2E_PROVIDERS !== "0") {
  try {
    const root = resolve(web, "..");
    execFileSync(process.env.CARGO ?? "cargo", ["build", "--locked", "-p", "vidsight-providers", "--features", "fake", "--example", "fake_gemini"], { cwd: root, stdio: ["ignore", "ignore", "pipe"], timeout: 900_000 });
    gemini = spawn(join(root, "target/debug/examples/fake_gemini"), [], { stdio: ["ignore", "pipe", "pipe"] });
    gemini.stderr.on("data", (chunk) => geminiOutput.push(chunk));
    geminiUrl = await new Promise((done, fail) => {
      let text = "";
      const timer = setTimeout(() => fail(new Error("the fake Gemini printed no address in 10 s")), 10_000);
      gemini.stdout.on("data", (chunk) => {
        text += chunk;
        const line = text.split("\n")[0];
        if (text.includes("\n")) {
          clearTimeout(timer);
          done(line.trim());
        }
      });
      gemini.on("exit", (code) => fail(new Error(`the fake Gemini exited (${code})`)));
    });
  } catch (error) {
    console.log(`e2e: providers part SKIPPED — the fake Gemini did not start: ${String(error?.stderr ?? error).trim().split("\n").slice(-3).join(" / ")}`);
    gemini?.kill("SIGTERM");
    gemini = undefined;
    geminiUrl = undefined;
  }
}
const GEMINI_KEY = "fake-gemini-key-0123456789"; // the one key the fake accepts

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const log = join(artifacts, "server.log");
const server = spawn(binary, ["serve", "--addr", `127.0.0.1:${port}`, "--data-dir", join(work, "data")], {
  env: {
    ...process.env,
    VIDSIGHT_HTTP__WEB_DIR: join(web, "dist"),
    VIDSIGHT_LOG__LEVEL: "info",
    RUST_LOG: undefined,
    // Gemini through the fake, or no provider at all (whatever the environment says)
    GEMINI_API_KEY: geminiUrl ? GEMINI_KEY : undefined,
    VIDSIGHT_GEMINI_BASE_URL: geminiUrl,
    VIDSIGHT_PROVIDERS__GEMINI__API_KEY: undefined,
    VIDSIGHT_PROVIDERS__DEFAULT: undefined,
    VIDSIGHT_PROVIDERS__TOKENS_PER_MONTH: geminiUrl ? "2000000" : undefined,
  },
  stdio: ["ignore", "pipe", "pipe"],
});
const output = [];
server.stdout.on("data", (chunk) => output.push(chunk));
server.stderr.on("data", (chunk) => output.push(chunk));
let browser;
const refused = [];
const finish = async (code) => {
  await browser?.close().catch(() => undefined);
  server.kill("SIGTERM");
  gemini?.kill("SIGTERM");
  writeFileSync(log, Buffer.concat(output));
  if (geminiOutput.length) writeFileSync(join(artifacts, "fake-gemini.log"), Buffer.concat(geminiOutput));
  rmSync(work, { recursive: true, force: true });
  process.exit(code);
};
process.on("unhandledRejection", async (error) => {
  console.error(error);
  await finish(1);
});

async function waitHealthy() {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}); see ${log}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error("the server did not become healthy in 30 s");
}

try {
  await waitHealthy();
  step(`server up on ${base}`);
  browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true, colorScheme: "light" });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const consoleErrors = [];
  page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
  page.on("pageerror", (error) => consoleErrors.push(`${error}`));
  page.on("dialog", (dialog) => dialog.accept());
  page.on("response", (response) => {
    if (response.status() >= 400 && response.url().includes("/api/")) refused.push(`${response.status()} ${response.request().method()} ${response.url()}`);
  });

  // --- sign up ---------------------------------------------------------------------------
  await page.goto(`${base}/`);
  await page.getByRole("link", { name: "Create an account" }).click();
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Library" }).waitFor();
  await page.getByText("No videos yet").waitFor();
  step("signed up; the empty library says what to do");

  // --- MFA on ------------------------------------------------------------------------------
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  const secret = (await page.locator("section[aria-label='Two-factor authentication'] code").first().textContent()).trim();
  assert.match(secret, /^[A-Z2-7]+=*$/, "the TOTP key is shown in base32");
  await page.getByRole("img", { name: "QR code for the authenticator app" }).waitFor();
  await page.getByLabel("Code from the app").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on" }).click();
  await page.getByText("Keep these recovery codes").waitFor();
  assert.equal(await page.locator(".codes li").count(), 10, "ten recovery codes");
  step("MFA enrolled with a TOTP code; 10 recovery codes shown");

  // --- sign out, sign in with the TOTP step ------------------------------------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  const signInProblems = await accessibilityProblems(page);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByLabel("Two-factor code").waitFor();
  // the enrollment's step was spent (a code works once); the app's next code is accepted
  await page.getByLabel("Two-factor code").fill(totp(secret, Date.now() + 30_000));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Library" }).waitFor();
  step("signed out, and in again with password + TOTP");

  // --- upload two clips: one loses its connection mid-chunk and retries from the server's
  // offset; the other is cut off by a page reload and resumes when the file is chosen again
  const uploadLog = [];
  const urls = new Map(); // upload URL → file name
  let dropped;
  let halted;
  let halfSent;
  const halfway = new Promise((done) => (halfSent = done));
  await page.route(/\/api\/v1\/uploads(\/|$)/, async (route) => {
    const request = route.request();
    uploadLog.push({ method: request.method(), url: request.url(), offset: request.headers()["upload-offset"] });
    if (request.method() === "POST") {
      const response = await route.fetch();
      const name = Buffer.from(/filename ([^,]+)/.exec(request.headers()["upload-metadata"])[1], "base64").toString();
      urls.set(new URL(response.headers()["location"], base).href, name);
      await route.fulfill({ response });
      return;
    }
    if (request.method() === "PATCH" && (!dropped || (!halted && request.url() !== dropped))) {
      // half the chunk reaches the server, then…
      const body = request.postDataBuffer();
      await route.fetch({ postData: body.subarray(0, Math.floor(body.length / 2)) });
      if (!dropped) {
        dropped = request.url();
        await route.abort("connectionreset"); // …the connection drops
      } else {
        halted = request.url();
        halfSent(); // …the page goes away before the answer
      }
      return;
    }
    await route.continue();
  });
  await page.locator("input[type=file]").setInputFiles([join(media, "bigbuckbunny.mp4"), captioned]);
  await halfway;
  await page.waitForFunction(() => [...document.querySelectorAll(".transfers .meta")].some((meta) => meta.textContent === "uploaded"), null, { timeout: 60_000 });
  const droppedLog = uploadLog.filter((entry) => entry.url === dropped);
  assert.ok(droppedLog.some((entry) => entry.method === "HEAD"), `after the drop the client asked the server's offset: ${JSON.stringify(droppedLog)}`);
  const droppedResume = droppedLog.find((entry) => entry.method === "PATCH" && Number(entry.offset) > 0);
  assert.ok(droppedResume, `the dropped upload resumed from the middle, not from zero: ${JSON.stringify(droppedLog)}`);
  step(`${urls.get(dropped)}: connection dropped mid-chunk; resumed at byte ${droppedResume.offset}`);

  await page.reload();
  await page.getByRole("heading", { name: "Library" }).waitFor();
  const haltedName = urls.get(halted);
  // the page says what was cut short and how to continue
  await page.locator(".unfinished", { hasText: haltedName }).getByText(/\d+% of/).waitFor();
  const postsBefore = uploadLog.filter((entry) => entry.method === "POST").length;
  const resumeFrom = uploadLog.length;
  await page.locator("input[type=file]").setInputFiles(haltedName === "bigbuckbunny.mp4" ? join(media, "bigbuckbunny.mp4") : captioned);
  await page.waitForFunction(() => [...document.querySelectorAll(".transfers .meta")].some((meta) => meta.textContent === "uploaded"), null, { timeout: 60_000 });
  await page.unroute(/\/api\/v1\/uploads(\/|$)/);
  const afterReload = uploadLog.slice(resumeFrom);
  assert.equal(uploadLog.filter((entry) => entry.method === "POST").length, postsBefore, `no new upload was created after the reload: ${JSON.stringify(afterReload)}`);
  const reloadResume = afterReload.find((entry) => entry.method === "PATCH" && entry.url === halted && Number(entry.offset) > 0);
  assert.ok(reloadResume, `after the reload the same upload resumed from the middle: ${JSON.stringify(afterReload)}`);
  await page.locator(".unfinished").waitFor({ state: "detached" });
  step(`${haltedName}: page reloaded mid-upload; listed as unfinished; chosen again, it resumed at byte ${reloadResume.offset}`);

  // --- live progress to ready (no reload) --------------------------------------------------
  const seen = new Set();
  const poll = setInterval(async () => {
    const text = await page.locator(".grid").textContent().catch(() => "");
    for (const state of ["uploaded", "processing", "ready"]) if (text?.includes(state)) seen.add(state);
  }, 100);
  await page.waitForFunction(() => {
    const badges = [...document.querySelectorAll(".grid .badge")];
    return badges.length === 2 && badges.every((badge) => badge.textContent === "ready");
  }, null, { timeout: 180_000 });
  clearInterval(poll);
  step(`both videos ready, followed live on the page (states seen: ${[...seen].join(", ")})`);
  await page.locator(".grid img").first().waitFor();
  await page.screenshot({ path: join(artifacts, "library.jpg"), quality: 80 });
  const a11y = { signin: signInProblems };
  a11y.library = await accessibilityProblems(page);

  // --- open one; click a shot on the timeline ----------------------------------------------
  await page.getByRole("link", { name: /bikes-captioned\.mp4/ }).first().click();
  await page.getByRole("heading", { name: "bikes-captioned.mp4" }).waitFor();
  const player = page.locator("video");
  await page.waitForFunction(() => (document.querySelector("video")?.readyState ?? 0) >= 1, null, { timeout: 30_000 });
  const shots = page.locator("[data-lane=shots] button");
  const shotCount = await shots.count();
  assert.ok(shotCount >= 3, `bikes.mp4 has several shots (found ${shotCount})`);
  const target = shots.nth(2);
  const label = await target.getAttribute("aria-label");
  await target.hover();
  await page.locator(".timeline .preview img").waitFor();
  await target.click();
  const insights = await (await page.request.get(`${base}/api/v1/videos/${page.url().split("/videos/")[1]}/insights`)).json();
  const shotStart = insights.shots[2].start;
  await page.waitForFunction((expected) => Math.abs(document.querySelector("video").currentTime - expected) < 0.5, shotStart);
  const currentTime = await player.evaluate((element) => element.currentTime);
  step(`clicked “${label}”: the player moved to ${currentTime.toFixed(2)} s (the shot starts at ${shotStart} s)`);
  await player.evaluate((element) => element.pause());

  // the keyboard does the same: Tab reaches the shots, Enter seeks, focus is visible
  await shots.nth(1).focus();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Shift+Tab");
  assert.equal(await shots.nth(1).evaluate((element) => element === document.activeElement), true, "Tab order runs through the shots");
  const outline = await shots.nth(1).evaluate((element) => getComputedStyle(element).outlineStyle);
  assert.notEqual(outline, "none", "the focused shot shows a focus ring");
  await page.keyboard.press("Enter");
  await page.waitForFunction((expected) => Math.abs(document.querySelector("video").currentTime - expected) < 0.5, insights.shots[1].start);
  await player.evaluate((element) => element.pause());
  step("keyboard: Tab reaches the shots, the focus ring shows, Enter seeks");

  // the captions panel follows playback, and a click on a cue seeks
  await page.getByRole("button", { name: new RegExp(WORD) }).click();
  await page.waitForFunction(() => {
    const current = document.querySelector(".cues li[aria-current=true]");
    return current?.textContent?.includes("lighthouse");
  });
  await player.evaluate((element) => element.pause());
  step("the captions panel highlights the cue playing; clicking a cue seeks");
  if (!geminiUrl) {
    // no provider: nothing of them shows, and Analyse again stays a plain button
    assert.equal(await page.locator("section.ask, section[aria-label=Summary], section[aria-label=Transcript], details.runs").count(), 0, "no provider panels without providers");
    assert.equal(await page.getByRole("button", { name: "Analyse again", exact: true }).count(), 1, "the plain Analyse again button");
  }
  await page.screenshot({ path: join(artifacts, "video.jpg"), quality: 80 });
  a11y.video = await accessibilityProblems(page);

  // --- download the WebVTT export ----------------------------------------------------------
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export WebVTT" }).click()]);
  const vttPath = join(artifacts, "export.vtt");
  await download.saveAs(vttPath);
  const vtt = readFileSync(vttPath, "utf8");
  assert.ok(vtt.startsWith("WEBVTT"), "a WebVTT file");
  assert.equal((vtt.match(/-->/g) ?? []).length, shotCount, "one cue per shot");
  const [srt] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export SRT" }).click()]);
  const srtText = readFileSync(await srt.path(), "utf8");
  assert.ok(srtText.includes(`race towards the ${WORD}.`) && srtText.includes("00:00:03,200 --> 00:00:06,500"), srtText);
  step(`downloaded the WebVTT export (${shotCount} cues) and the captions as SRT`);

  // --- search a word from the insights -----------------------------------------------------
  await page.getByRole("link", { name: "Library" }).click();
  await page.getByRole("searchbox").fill(WORD);
  await page.getByRole("button", { name: "Search" }).click();
  const hit = page.locator(".results a", { hasText: WORD }).first();
  await hit.waitFor();
  await hit.click();
  await page.getByRole("heading", { name: "bikes-captioned.mp4" }).waitFor();
  assert.match(page.url(), /\?t=3\.2/, "the hit opens the video at the caption's time");
  await page.waitForFunction(() => Math.abs((document.querySelector("video")?.currentTime ?? 0) - 3.2) < 0.5);
  step(`searched “${WORD}”: found in the captions, opened the video at 0:03`);

  // --- providers (the fake Gemini): analyse again with options, the panels, questions -------
  if (geminiUrl) {
    const videoId = page.url().split("/videos/")[1].split("?")[0];
    const time = () => page.evaluate(() => document.querySelector("video").currentTime);
    const seeksTo = (expected) => page.waitForFunction((at) => Math.abs(document.querySelector("video").currentTime - at) < 0.5, expected);
    const pause = () => player.evaluate((element) => element.pause());
    assert.equal(await page.locator("section[aria-label=Summary]").count(), 0, "no provider panels before a provider ran");
    await page.getByRole("button", { name: "Analyse again…" }).click();
    const dialog = page.getByRole("dialog", { name: "Analyse again" });
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel("Provider").inputValue(), "local", "the configured default provider (local) is chosen");
    assert.equal(await dialog.getByLabel("Model").isDisabled(), true, "no model to choose for the built-in analysis");
    await dialog.getByLabel("Provider").selectOption("gemini");
    assert.equal(await dialog.getByLabel("Model").getAttribute("placeholder"), "gemini-3.5-flash", "the provider's default model is the placeholder");
    for (const name of ["Summary", "Chapters"]) assert.equal(await dialog.getByLabel(name, { exact: true }).isChecked(), true, `${name} is ticked (a default feature)`);
    for (const name of ["Transcript with speakers", "Labels (objects, places, activities)", "On-screen text", "Topics and keywords", "Moderation flags", "Custom prompt"]) await dialog.getByLabel(name).check();
    await dialog.getByLabel("Media resolution").selectOption("low");
    await dialog.getByRole("textbox", { name: "Custom prompt" }).fill("How many riders are there?");
    const schemaBox = dialog.getByRole("textbox", { name: /JSON Schema/ });
    await schemaBox.fill('{"type": "object", "properties": {"riders": {"type": "integer"}},}');
    await dialog.getByText(/The schema is not valid JSON \(line 1, column \d+\)/).waitFor();
    const posts = [];
    const countPosts = (request) => request.method() === "POST" && request.url().endsWith("/analyses") && posts.push(request.url());
    page.on("request", countPosts);
    await dialog.getByRole("button", { name: "Analyse", exact: true }).click();
    await dialog.getByRole("alert").getByText(/not valid JSON/).waitFor();
    assert.equal(posts.length, 0, "a broken schema is refused before anything is sent");
    await schemaBox.fill('{"type": "object", "properties": {"riders": {"type": "integer"}}, "required": ["riders"]}');
    await dialog.getByText("A usable schema").waitFor();
    await dialog.evaluate((element) => (element.scrollTop = 0));
    await page.screenshot({ path: join(artifacts, "analyse-dialog.jpg"), quality: 80 });
    a11y.dialog = await accessibilityProblems(page);
    await dialog.getByRole("button", { name: "Analyse", exact: true }).click();
    await dialog.waitFor({ state: "hidden" });
    page.off("request", countPosts);
    assert.equal(posts.length, 1, "one analysis queued");
    const summary = page.locator("section[aria-label=Summary]");
    await summary.waitFor({ timeout: 120_000 });
    const failed = await page.locator(".meta .badge.failed").count();
    assert.equal(failed, 0, "the provider analysis succeeded");
    assert.match(await summary.textContent(), /Two cyclists leave a harbour/);
    assert.match(await summary.locator(".source-badge").textContent(), /gemini · gemini-3\.5-flash/);
    assert.deepEqual(await summary.locator(".chips li").allTextContents(), ["cycling", "sport", "bicycle", "race", "harbour", "lighthouse", "coast road"]);
    step("analysed again with Gemini (the fake) from the dialog: a broken schema was refused in the page first; the summary and topics show, marked gemini");

    const providerInsights = await (await page.request.get(`${base}/api/v1/videos/${videoId}/insights`)).json();
    // what the dialog sent: every feature ticked, the prompt and schema, the resolution
    assert.deepEqual([...providerInsights.providers[0].features].sort(), ["chapters", "custom", "labels", "moderation", "summary", "text", "topics", "transcript"]);
    assert.equal(providerInsights.custom.prompt, "How many riders are there?");
    const chapterLane = page.locator("[data-lane=chapters] button");
    assert.equal(await chapterLane.count(), providerInsights.chapters.length, "one timeline segment per chapter");
    await chapterLane.nth(1).click();
    await seeksTo(providerInsights.chapters[1].start);
    await pause();
    const chapterList = page.locator("section[aria-label=Chapters] li");
    assert.equal(await chapterList.count(), providerInsights.chapters.length);
    await chapterList.nth(2).getByRole("button").click();
    await seeksTo(providerInsights.chapters[2].start);
    await pause();
    await page.waitForFunction(() => document.querySelector("section[aria-label=Chapters] li[aria-current=true]")?.textContent?.includes("The finish"));
    const snapped = providerInsights.chapters.filter((chapter) => chapter.snapped).length;
    assert.equal(await page.locator("[data-lane=chapters] button.snapped").count(), snapped, "snapped chapters are marked");
    step(`chapters: ${providerInsights.chapters.length} on the timeline and in a list (${snapped} snapped to a shot cut); clicks seek, the current one is marked`);

    const transcript = page.locator("section[aria-label=Transcript]");
    await transcript.getByText("Narrator:").first().waitFor();
    await transcript.getByRole("button", { name: /The finish line is near/ }).click();
    await page.waitForFunction(() => document.querySelector("section[aria-label=Transcript] li[aria-current=true]")?.textContent?.includes("finish line"));
    await pause();
    const labels = page.locator("section[aria-label=Labels] > ul > li");
    assert.deepEqual(await labels.locator(".label-name").allTextContents(), ["bicycle", "cyclist", "lighthouse"], "labels grouped by name");
    assert.equal(await labels.first().getByRole("button").count(), 2, "the bicycle's two time ranges");
    await labels.first().getByRole("button").nth(1).click();
    await seeksTo(Math.max(...providerInsights.labels.filter((label) => label.name === "bicycle").map((label) => label.start)));
    await pause();
    await page.locator("section[aria-label=Moderation] .severity.low").waitFor();
    await page.locator("section[aria-label='On-screen text']").getByText("FINISH").waitFor();
    assert.deepEqual(JSON.parse(await page.locator("section[aria-label='Custom answer'] pre").textContent()), { riders: 2 });
    const runs = page.locator("details.runs");
    assert.equal(await runs.evaluate((element) => element.open), false, "the provider runs start collapsed");
    await runs.locator("summary").click();
    await runs.getByText(/prompt by kind/).waitFor();
    step("transcript follows playback with speakers; labels grouped with their ranges; moderation, on-screen text, the custom answer (JSON), the runs (collapsed)");

    // questions: streamed, citations seek, follow-ups continue the conversation
    const asks = [];
    const countAsks = (request) => request.url().endsWith("/ask") && asks.push(request.postDataJSON());
    page.on("request", countAsks);
    const askPanel = page.locator("section.ask");
    await askPanel.getByRole("textbox", { name: "Question", exact: true }).fill("When do they reach the lighthouse?");
    await askPanel.getByRole("textbox", { name: "Question", exact: true }).press("Enter");
    const citation = askPanel.getByRole("button", { name: "Play from 0:03–0:06" }).first();
    await citation.waitFor();
    assert.equal(await askPanel.locator("[role=log]").getAttribute("aria-live"), "polite");
    await askPanel.getByText(/cited outside the video, left out: \[02:00\]/).waitFor();
    await citation.click();
    await seeksTo(3);
    await pause();
    await askPanel.getByRole("textbox", { name: "Follow-up question" }).fill("And the finish?");
    await askPanel.getByRole("button", { name: "Ask", exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll("section.ask .turn").length === 2 && document.querySelectorAll("section.ask .turn:last-child .cite").length > 0);
    page.off("request", countAsks);
    assert.equal(asks[0].conversation, null, "the first question starts a conversation");
    assert.ok(asks[1].conversation, `the follow-up continues it: ${JSON.stringify(asks)}`);
    step(`asked a question: the answer streamed in, a citation seeked the player to ${(await time()).toFixed(1)} s; the follow-up continued conversation ${asks[1].conversation.slice(0, 8)}…`);
    await askPanel.screenshot({ path: join(artifacts, "video-ask.jpg"), quality: 80 });
    await page.locator("section[aria-label=Timeline]").evaluate((element) => element.scrollIntoView({ block: "start" }) ?? window.scrollBy(0, -16));
    await page.screenshot({ path: join(artifacts, "video-providers.jpg"), quality: 80 });
    a11y.providers = await accessibilityProblems(page);
    await askPanel.getByRole("button", { name: "New conversation" }).click();
    assert.equal(await askPanel.locator(".turn").count(), 0, "a new conversation starts empty");
  }

  // --- create an API key -------------------------------------------------------------------
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Name").fill("e2e import");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.locator("code.secret").first().textContent()).trim();
  assert.match(key, /^vsk_[0-9a-f]+_[A-Za-z0-9_-]+$/, "the key's secret is shown (once)");
  const withKey = await fetch(`${base}/api/v1/videos`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(withKey.status, 200, "the new key works");
  assert.equal((await withKey.json()).items.length, 2);
  step("created an API key; it lists the two videos");
  if (geminiUrl) {
    await page.locator(".provider-usage").getByText(/tokens of 2,000,000 in \d{4}-\d{2}/).waitFor();
    step(`settings: ${(await page.locator(".provider-usage p").first().textContent()).trim()}`);
  }
  await page.screenshot({ path: join(artifacts, "settings.jpg"), quality: 80, fullPage: true });
  a11y.settings = await accessibilityProblems(page);

  // --- admin: queue, failed jobs, accounts and usage ---------------------------------------
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("heading", { name: "Queue and workers" }).waitFor();
  await page.getByRole("heading", { name: "Failed jobs" }).waitFor();
  await page.locator("section[aria-label=Usage]").getByText(EMAIL).waitFor();
  a11y.admin = await accessibilityProblems(page);
  step("the admin page shows the queue, failed jobs and this account's usage");

  // --- delete a video ----------------------------------------------------------------------
  await page.getByRole("link", { name: "Library" }).click();
  await page.getByRole("link", { name: /bigbuckbunny\.mp4/ }).first().click();
  await page.getByRole("heading", { name: "bigbuckbunny.mp4" }).waitFor();
  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("heading", { name: "Library" }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll(".grid .card").length === 1);
  const after = await (await fetch(`${base}/api/v1/videos`, { headers: { authorization: `Bearer ${key}` } })).json();
  assert.deepEqual(after.items.map((video) => video.filename), ["bikes-captioned.mp4"]);
  step("deleted a video (confirmed); one is left");

  // --- phone width -------------------------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: /bikes-captioned\.mp4/ }).first().click();
  await page.getByRole("heading", { name: "bikes-captioned.mp4" }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `nothing is wider than a phone screen (overflow ${overflow}px)`);
  await page.screenshot({ path: join(artifacts, "video-phone.jpg"), quality: 80 });
  await page.emulateMedia({ colorScheme: "dark" });
  a11y.phone = await accessibilityProblems(page);
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, "rgb(17, 19, 24)", "dark mode follows the system");
  await page.screenshot({ path: join(artifacts, "video-phone-dark.jpg"), quality: 80 });
  if (geminiUrl) await page.screenshot({ path: join(artifacts, "video-providers-phone-dark.jpg"), quality: 80, fullPage: true });
  a11y.dark = await accessibilityProblems(page);
  step("the video page fits a 390 px wide phone, and goes dark with the system");
  assert.deepEqual(Object.fromEntries(Object.entries(a11y).filter(([, problems]) => problems.length)), {}, "no serious or critical WCAG 2.1 AA findings (axe-core)");
  step(`axe-core finds no serious or critical WCAG 2.1 AA problems on ${Object.keys(a11y).join(", ")}`);

  const unexpected = consoleErrors.filter((text) => !/401|Failed to load resource/.test(text));
  assert.deepEqual(unexpected, [], "no script errors in the console");
  step(`passed; screenshots in ${artifacts}`);
  await finish(0);
} catch (error) {
  console.error(`e2e: FAILED — ${error?.stack ?? error}`);
  console.error(`the server's log: ${log}`);
  console.error(`API responses >= 400 the page saw:\n  ${refused.join("\n  ")}`);
  try {
    const pages = browser?.contexts().flatMap((context) => context.pages()) ?? [];
    if (pages[0]) await pages[0].screenshot({ path: join(artifacts, "failure.png") });
  } catch {
    /* the browser is gone */
  }
  await finish(1);
}
