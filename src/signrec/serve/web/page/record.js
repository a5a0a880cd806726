// signrec recording wizard: signs x takes, a countdown, record, the take replayed as a skeleton with quality
// hints, keep or redo; the kept takes download as a signrec landmark dataset (dataset.js) or, when `signrec serve`
// serves the page, go to its POST /v1/enroll, which makes and switches to a model of this person. Only landmarks
// are kept or sent, never the picture. Takes live in this page until downloaded or sent: a refused camera, a bad
// take or a failed enrollment loses none.
import { datasetFiles, zip } from "./dataset.js";
import { drawSkeleton } from "./draw.js";
import { forDrawing, toFrame } from "./landmarks.js";
import { createHolistic } from "./mediapipe.js";
import { checkTake, pictureStats } from "./quality.js";

const $ = (id) => document.getElementById(id);
const video = $("video"), overlay = $("overlay"), ctx = overlay.getContext("2d");
const small = document.createElement("canvas");
const smallCtx = small.getContext("2d", { willReadFrequently: true });
small.width = 160;
small.height = 90;

// Readable by scripts and tests: the phase, the kept takes and the last take's hints.
const rec = window.signrecRecorder = { ready: false, error: null, phase: "setup", takes: [], hints: [],
  zipBase64: async () => btoa(Array.from(new Uint8Array(await dataset().arrayBuffer()), (b) => String.fromCharCode(b)).join("")) };
const run = { holistic: null, stream: null, landmarks: { face: true, hand_model: "full" }, usesFace: true, decide: null };

$("setup").addEventListener("submit", (event) => { event.preventDefault(); record(); });
$("keep").addEventListener("click", () => run.decide && run.decide(true));
$("redo").addEventListener("click", () => run.decide && run.decide(false));
$("download").addEventListener("click", download);
$("enroll").addEventListener("click", enroll);
$("use-link").search = location.search;   // the recogniser keeps ?api_key=
findServer();
load().catch((e) => { rec.error = String(e.message || e); setStatus(rec.error, true); });

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function load() {
  // The model beside the page (if any) suggests its signs and says whether the face matters.
  try {
    const response = await fetch("model.json", { headers: apiKeyHeader() });
    if (response.ok) {
      const model = await response.json();
      $("signs").value = model.labels.join(", ");
      run.landmarks = model.landmarks;
      run.usesFace = model.landmarks.face;
    }
  } catch (e) { /* no model: any signs */ }
  run.holistic = await createHolistic();
  rec.ready = true;
  $("begin").disabled = false;
  setStatus("Ready.");
}

function apiKeyHeader() {
  const key = new URLSearchParams(location.search).get("api_key");
  return key ? { "X-API-Key": key } : {};
}

async function record() {
  const signs = $("signs").value.split(",").map((s) => s.trim()).filter(Boolean);
  const takes = Number($("takes").value), countdown = Number($("countdown-s").value), seconds = Number($("length-s").value);
  if (!signs.length) { setStatus("Type at least one sign.", true); return; }
  $("begin").disabled = true;
  try {
    run.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    $("begin").disabled = false;
    const why = e.name === "NotAllowedError" ? "camera access was refused" : (e.message || e.name);
    setStatus(`No camera: ${why}. Allow camera access and press Start recording again; takes kept so far stay.`, true);
    return;
  }
  video.srcObject = run.stream;
  await video.play();
  overlay.width = video.videoWidth;
  overlay.height = video.videoHeight;
  $("stage").classList.add("live");
  setStatus("Starting MediaPipe…");
  await run.holistic(video);   // its first frame is slow (graph set-up): not in a take
  for (const label of signs) {
    for (let take = 1; take <= takes;) {
      $("prompt").textContent = `“${label}”, take ${take} of ${takes}`;
      await count(countdown);
      const result = await recordTake(seconds);
      if (await review(result)) {
        rec.takes.push({ label, frames: result.frames });
        take += 1;
        showProgress();
      }
    }
  }
  run.stream.getTracks().forEach((track) => track.stop());
  video.srcObject = null;
  $("stage").classList.remove("live");
  $("prompt").textContent = "";
  $("begin").disabled = false;
  rec.phase = "done";
  setStatus(`Done: ${rec.takes.length} takes. Download the dataset, or record more.`);
}

async function count(seconds) {
  rec.phase = "countdown";
  setStatus("Get ready…");
  for (let s = seconds; s > 0; s--) {
    $("countdown").textContent = String(s);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  $("countdown").textContent = "";
}

const nextFrame = () => new Promise((resolve) => (video.requestVideoFrameCallback
  ? video.requestVideoFrameCallback(() => resolve()) : requestAnimationFrame(() => resolve())));

async function recordTake(seconds) {
  rec.phase = "recording";
  setStatus("Recording: sign now.");
  const frames = [], pictures = [];
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await nextFrame();
    const frame = toFrame(await run.holistic(video), { face: run.landmarks.face });
    smallCtx.drawImage(video, 0, 0, small.width, small.height);
    pictures.push(pictureStats(smallCtx.getImageData(0, 0, small.width, small.height)));
    frames.push(frame);
    drawSkeleton(ctx, forDrawing(frame));
  }
  return { frames, pictures, seconds: (performance.now() - start) / 1000 };
}

// The take replayed as a skeleton beside its hints until Keep or Redo; a take with no one in it can only be redone.
async function review({ frames, pictures, seconds }) {
  rec.phase = "review";
  rec.hints = checkTake(frames, pictures, seconds, { usesFace: run.usesFace });
  $("hints").replaceChildren(...(rec.hints.length ? rec.hints.map(({ hint }) => hint) : ["Looks good."]).map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
  $("hints").classList.toggle("ok", !rec.hints.length);
  $("keep").disabled = rec.hints.some((h) => h.check === "no_person");
  $("review").hidden = false;
  setStatus("Replaying the take: keep it or record it again.");
  let i = 0;
  const replay = setInterval(() => { drawSkeleton(ctx, forDrawing(frames[i++ % frames.length])); }, 1000 * seconds / frames.length);
  const keep = await new Promise((resolve) => { run.decide = resolve; });
  clearInterval(replay);
  run.decide = null;
  $("review").hidden = true;
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  return keep;
}

// A signrec server behind the page offers enrollment; a static copy of the page has none (../v1/ is not there).
async function findServer() {
  let response = null;
  try { response = await fetch("../v1/models", { headers: apiKeyHeader() }); } catch (e) { /* no server */ }
  rec.server = !!(response && response.ok);
  if (rec.server) {
    $("enroll").hidden = false;
    $("enroll").disabled = !rec.takes.length;
    setEnrollStatus("The server can make a model of your own from your takes (their landmarks are sent, " +
      "never the video).");
  } else if (response && response.status === 401) {
    setEnrollStatus("This server needs an API key to enroll: open the page with ?api_key=KEY.", true);
  } else {
    setEnrollStatus("Enrolling needs a signrec server, and this page is a static copy: download the dataset and run " +
      "`signrec enroll MODEL FOLDER --out MINE`, then `signrec export MINE --format web`.");
  }
}

function setEnrollStatus(text, error = false) {
  $("enroll-status").textContent = text;
  $("enroll-status").classList.toggle("error", error);
}

async function enroll() {
  const signer = $("signer").value.trim() || "me";
  const form = new FormData();
  form.append("files", dataset(), "signrec-dataset.zip");
  form.append("signer", signer);
  $("enroll").disabled = true;
  rec.phase = "enrolling";
  setEnrollStatus(`Enrolling ${rec.takes.length} takes of ${signer}…`);
  let response = null, body = {};
  try {
    response = await fetch("../v1/enroll", { method: "POST", body: form, headers: apiKeyHeader() });
    body = await response.json().catch(() => ({}));
  } catch (e) { body = { detail: `the server could not be reached (${e.message || e})` }; }
  $("enroll").disabled = false;
  if (!response || !response.ok) {
    rec.phase = "done";
    setEnrollStatus(`Not enrolled: ${body.detail || `HTTP ${response.status}`}. Your takes are kept.`, true);
    return;
  }
  rec.phase = "enrolled";
  rec.enrolled = body;
  const { model } = body;
  const added = model.new_signs.length ? ` (new: ${model.new_signs.join(", ")})` : "";
  setEnrollStatus(`Your model “${model.name}” is in use: ${model.labels.length} signs${added}. ` +
    `Expected accuracy: ${model.expected_accuracy}.`);
  $("enrolled").hidden = false;
}

function showProgress() {
  const counts = {};
  for (const take of rec.takes) counts[take.label] = (counts[take.label] || 0) + 1;
  $("progress").textContent = Object.entries(counts).map(([label, n]) => `${label}: ${n}`).join(" · ");
  $("download").disabled = !rec.takes.length;
  $("enroll").disabled = !rec.takes.length;
}

const dataset = () => zip(datasetFiles(rec.takes, $("signer").value.trim() || "me", run.landmarks));

function download() {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(dataset());
  a.download = "signrec-dataset.zip";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
