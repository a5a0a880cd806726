// signrec on-device page: camera -> MediaPipe Holistic (wasm) -> (543, 3) landmarks -> the exported ONNX model
// (ONNX Runtime Web) -> top-3 and words. Nothing leaves the browser. One frame is processed at a time; camera
// frames that arrive meanwhile are skipped (counted), so a slow device lowers the rate instead of lagging.
//
// Query parameters: api_key=KEY (a `signrec serve --api-key` server guards the model files);
// frame_clock=FPS (time the stream by camera frames, each 1/FPS s, instead of by the wall clock: for clips
// played slower than real time through a fake camera, as the parity test does); trace=1 (keep every frame's
// landmarks in window.signrec.trace, for that test); inference=gpu (run MediaPipe's models with WebGL).
import * as ort from "./vendor/ort/ort.wasm.bundle.min.mjs";
import { drawSkeleton } from "./draw.js";
import { forDrawing, LAYOUT, toFrame } from "./landmarks.js";
import { createHolistic } from "./mediapipe.js";
import { StreamRecognizer } from "./recognizer.js";

const MODEL_CACHE = "signrec-model";   // model.onnx and model.json, refreshed on each online visit
const LATENCY_WINDOW = 300;            // frames the shown median and p95 are taken over

const $ = (id) => document.getElementById(id);
const video = $("video"), overlay = $("overlay"), ctx = overlay.getContext("2d");
const params = new URLSearchParams(location.search);
const apiKey = params.get("api_key") || "";
const frameClock = Number(params.get("frame_clock")) || 0;

// What tests and curious users can read: readiness, frame-to-answer times (ms), skipped camera frames.
const page = window.signrec = { ready: false, error: null, latencies: [], skipped: 0, frames: 0, state: null,
  trace: params.get("trace") === "1" ? [] : null };
const run = { stream: null, recognizer: null, holistic: null, session: null, model: null,
  start: 0, firstPresented: 0, lastPresented: null, hidden: 0 };

$("start").addEventListener("click", start);
$("stop").addEventListener("click", () => stop("Stopped."));
$("clear").addEventListener("click", () => { run.hidden = page.state ? page.state.words.length : 0; render(page.state); });
$("draw").addEventListener("change", () => ctx.clearRect(0, 0, overlay.width, overlay.height));
if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("sw.js").catch((e) => console.warn("no offline copy:", e));
}
$("models").addEventListener("change", () => useModel($("models").value));
$("record-link").search = location.search;
load().catch((e) => fail(e.message || String(e)));
listModels();

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function fail(message) {
  page.error = message;
  setStatus(message, true);
}

// Network first, so that a new model is picked up; the copy kept in the cache when offline.
async function fetchKept(name) {
  const url = new URL(name, location.href);
  let response = null;
  try {
    response = await fetch(url, { headers: apiKey ? { "X-API-Key": apiKey } : {}, cache: "no-cache" });
  } catch (e) { /* offline: the kept copy below */ }
  if (response && response.ok) {
    if (window.caches) await (await caches.open(MODEL_CACHE)).put(url, response.clone());
    return response;
  }
  const kept = window.caches && await caches.match(url, { ignoreSearch: true });
  if (kept) return kept;
  if (!response) throw new Error(`Could not load ${name}: no network, and no copy kept from an earlier visit.`);
  if (response.status === 401) throw new Error("This server needs an API key: open the page with ?api_key=KEY.");
  // signrec serve says why in `detail` (no current model.onnx, a model the page can not run).
  const detail = (await response.json().catch(() => ({}))).detail;
  throw new Error(detail || `Could not load ${name}: HTTP ${response.status}.`);
}

async function load() {
  const model = run.model = page.model = await (await fetchKept("model.json")).json();
  describe(model);
  // MediaPipe's JS Holistic has the full hand model only; a model trained on lite-hand landmarks would get
  // landmarks unlike its training data.
  if (model.layout !== LAYOUT || model.landmarks.hand_model !== "full") {
    throw new Error(`This model needs ${model.layout} landmarks made with the ${model.landmarks.hand_model} hand ` +
      "model; the browser's MediaPipe makes full-hand landmarks only. Use it with `signrec serve`, or train on " +
      "landmarks extracted without --hand-model lite.");
  }
  ort.env.wasm.numThreads = 1;   // one thread: no cross-origin isolation needed, and the model is tiny
  const onnx = await (await fetchKept("model.onnx")).arrayBuffer();
  run.session = await ort.InferenceSession.create(onnx, { executionProviders: ["wasm"] });

  run.holistic = await createHolistic({ gpu: params.get("inference") === "gpu" });
  page.ready = true;
  $("start").disabled = false;
  setStatus("Ready: press Start camera.");
}

// Served by `signrec serve`: its models (the base one and personal ones) to choose from; a static copy has one.
async function listModels() {
  let listing = null;
  try {
    const response = await fetch("../v1/models", { headers: apiKey ? { "X-API-Key": apiKey } : {} });
    if (response.ok) listing = await response.json();
  } catch (e) { /* no server, or offline */ }
  if (!listing) return;
  $("models").replaceChildren(...listing.models.map((m) => {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = m.base ? "base model" : `${m.name} (personal model of ${m.signer})`;
    option.selected = m.in_use;
    return option;
  }));
  $("models-box").hidden = false;
}

async function useModel(name) {
  setStatus(`Switching to ${name}…`);
  const response = await fetch(`../v1/models/${encodeURIComponent(name)}/use`,
    { method: "POST", headers: apiKey ? { "X-API-Key": apiKey } : {} }).catch(() => null);
  if (!response || !response.ok) {
    fail(`Could not switch to ${name}: ${(response && (await response.json().catch(() => ({}))).detail) || "no server"}.`);
    return;
  }
  location.reload();   // the page loads the model now in use
}

function describe(model) {
  const n = model.labels.length;
  $("model").textContent = `Knows ${n} sign${n === 1 ? "" : "s"}: ${model.labels.join(", ")}`;
  // Which model this is and what to expect of it (from its model card); a static export has no name.
  const which = model.signer ? `personal model “${model.name}” of ${model.signer}`
    : (model.name ? "the base model" : "the model of this page");
  $("in-use").replaceChildren("Model in use: ", Object.assign(document.createElement("strong"), { textContent: which }),
    ` · expected accuracy: ${model.expected_accuracy}`);
  const rows = [["Model", `${model.model} from signrec ${model.signrec}`]];
  // signrec's model card: what a new person can expect, measured on signers the model never saw.
  if (model.card) rows.push(["Model card", model.card.split("\n").slice(1).map((line) => line.trim()).join("\n")]);
  rows.push(["Landmarks", `MediaPipe Holistic, ${model.landmarks.face ? "with" : "without"} the face, ${model.landmarks.hand_model} hands`]);
  $("card").replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value;
    return [dt, dd];
  }));
}

// The ONNX graph featurises raw landmarks itself: frames in, probabilities out.
async function classify(frames) {
  const data = new Float32Array(frames.length * 543 * 3);
  frames.forEach((frame, i) => data.set(frame, i * 543 * 3));
  const out = await run.session.run({
    landmarks: new ort.Tensor("float32", data, [1, frames.length, 543, 3]),
    lengths: new ort.Tensor("int64", BigInt64Array.of(BigInt(frames.length)), [1]),
  });
  return out.probabilities.data;
}

async function start() {
  $("start").disabled = true;
  setStatus("Asking for the camera…");
  try {
    run.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    $("start").disabled = false;
    const why = e.name === "NotAllowedError" ? "camera access was refused" : (e.message || e.name);
    setStatus(`No camera: ${why}. Allow camera access and try again.`, true);
    return;
  }
  video.srcObject = run.stream;
  await video.play();
  overlay.width = video.videoWidth;
  overlay.height = video.videoHeight;
  $("stage").classList.add("live");
  $("stop").disabled = false;
  run.recognizer = new StreamRecognizer(run.model.labels, classify, run.model.stream);
  run.start = performance.now();
  run.lastPresented = null;
  page.frames = 0;
  setStatus("Sign in front of the camera.");
  nextFrame();
}

function nextFrame() {
  if (!run.stream) return;
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  else requestAnimationFrame(() => onFrame());
}

async function onFrame(_now, meta) {
  if (!run.stream) return;
  if (meta) {
    if (run.lastPresented !== null) page.skipped += Math.max(0, meta.presentedFrames - run.lastPresented - 1);
    else run.firstPresented = meta.presentedFrames;
    run.lastPresented = meta.presentedFrames;
  }
  const began = performance.now();
  try {
    const frame = toFrame(await run.holistic(video), { face: run.model.landmarks.face });
    // The frame clock counts camera frames, skipped ones too, so that a slow page keeps the clip's timing.
    const camera = meta ? meta.presentedFrames - run.firstPresented : page.frames;
    const t = frameClock ? camera / frameClock : (began - run.start) / 1000;
    page.frames += 1;
    const recognizer = run.recognizer;
    const state = await recognizer.push(frame, t);
    if (recognizer !== run.recognizer) return;   // stopped meanwhile
    render(state);
    if ($("draw").checked) drawSkeleton(ctx, forDrawing(frame));
    const ms = performance.now() - began;
    page.latencies.push(ms);
    if (page.trace) page.trace.push({ camera, t, ms, landmarks: Array.from(frame, (v) => (Number.isNaN(v) ? null : v)) });
    showStats(state);
  } catch (e) {
    stop(`Recognition failed: ${e.message || e}`, true);
    return;
  }
  nextFrame();
}

async function stop(message, error = false) {
  if (run.stream) run.stream.getTracks().forEach((track) => track.stop());
  run.stream = null;
  video.srcObject = null;
  $("stage").classList.remove("live");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  $("start").disabled = false;
  $("stop").disabled = true;
  setStatus(message, error);
  const recognizer = run.recognizer;
  run.recognizer = null;
  if (recognizer) render(await recognizer.finish());   // the sign in progress, if any
}

function render(state) {
  if (!state) return;
  page.state = state;
  $("top").replaceChildren(...state.top.map(({ label, p }) => {
    const li = document.createElement("li");
    const pct = Math.round(p * 100);
    li.innerHTML = '<span class="label"></span><span class="bar" role="meter" aria-valuemin="0" aria-valuemax="100">' +
      '<span></span></span><span class="pct"></span>';
    li.querySelector(".label").textContent = label;
    li.querySelector(".bar").setAttribute("aria-valuenow", String(pct));
    li.querySelector(".bar").setAttribute("aria-label", `${label} ${pct}%`);
    li.querySelector(".bar span").style.width = `${pct}%`;
    li.querySelector(".pct").textContent = `${pct}%`;
    return li;
  }));
  const sign = $("sign");
  sign.textContent = state.top.length ? state.top[0].label : "–";
  sign.classList.toggle("unsure", !state.top.length || state.top[0].p < 0.5);
  $("words").replaceChildren(...state.words.slice(run.hidden).map((w) => {
    const li = document.createElement("li");
    li.textContent = w.label;
    const small = document.createElement("small");
    small.textContent = `${Math.round(w.confidence * 100)}%`;
    li.append(small);
    return li;
  }));
}

function showStats(state) {
  const recent = page.latencies.slice(-LATENCY_WINDOW).sort((a, b) => a - b);
  const q = (f) => recent[Math.min(recent.length - 1, Math.floor(f * recent.length))];
  $("stats").textContent = `frame to answer ${q(0.5).toFixed(0)} ms (p95 ${q(0.95).toFixed(0)} ms) on this device` +
    (page.skipped ? ` · ${page.skipped} camera frames skipped` : "") + (state.signing ? " · signing" : "");
}
