// signrec live page: camera -> downscaled JPEG frames over /v1/stream -> landmarks, top-3 and words back.
// One frame is in flight at a time, so a slow server lowers the frame rate instead of building a queue.
// The skeleton drawing and the style are the on-device page's own (web/page/draw.js, style.css), served here too.
import { drawSkeleton } from "./draw.js";

const SEND_WIDTH = 480;          // frames are downscaled to this width before JPEG encoding
const JPEG_QUALITY = 0.7;
const CONNECTED = "Connected: sign in front of the camera.";
const $ = (id) => document.getElementById(id);
const video = $("video"), overlay = $("overlay"), ctx = overlay.getContext("2d");
const grab = document.createElement("canvas"), grabCtx = grab.getContext("2d");
const params = new URLSearchParams(location.search);
const state = { ws: null, stream: null, inFlight: false, lastSent: 0, timer: null, sent: [], words: [], hidden: 0 };

$("key").value = params.get("api_key") || sessionStorage.getItem("signrec-key") || "";
$("key").addEventListener("change", () => { sessionStorage.setItem("signrec-key", $("key").value); loadModel(); });
$("start").addEventListener("click", start);
$("stop").addEventListener("click", () => stop("Stopped."));
$("clear").addEventListener("click", () => { state.hidden = state.words.length; renderWords(state.words); });
$("draw").addEventListener("change", () => ctx.clearRect(0, 0, overlay.width, overlay.height));
loadModel();
if (params.get("autostart") === "1") start();

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function loadModel() {
  const key = $("key").value;
  try {
    const r = await fetch("/v1/model", { headers: key ? { "X-API-Key": key } : {} });
    if (r.status === 401) { $("model").textContent = "This server needs an API key (see Connection)."; return; }
    const m = await r.json();
    $("model").textContent = `Knows ${m.labels.length} signs: ${m.labels.join(", ")}`;
  } catch (e) {
    $("model").textContent = "Could not reach the server.";
  }
}

async function start() {
  $("start").disabled = true;
  setStatus("Asking for the camera…");
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    $("start").disabled = false;
    setStatus(`No camera: ${e.message || e.name}. Allow camera access and try again.`, true);
    return;
  }
  video.srcObject = state.stream;
  await video.play();
  overlay.width = video.videoWidth;
  overlay.height = video.videoHeight;
  $("stage").classList.add("live");
  $("stop").disabled = false;
  connect();
}

function connect() {
  const fps = $("fps").value, key = $("key").value;
  const url = new URL("/v1/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("fps", fps);
  if (key) url.searchParams.set("api_key", key);
  setStatus("Connecting…");
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => { setStatus(CONNECTED); state.inFlight = false; loop(); };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    onMessage(msg);
    if (msg.type === "final") ws.close();
  };
  ws.onerror = () => setStatus("Connection error.", true);
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (state.stream) stop(event.code === 1000 ? "Disconnected." : `Disconnected (${event.code}) ${event.reason || ""}`, true);
  };
}

function stop(message, error = false) {
  clearTimeout(state.timer);
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    if (ws.readyState === WebSocket.OPEN) {   // ask for the sign in progress; its "final" reply closes
      ws.send(JSON.stringify({ type: "end" }));
      setTimeout(() => ws.close(), 2000);
    } else ws.close();
  }
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  video.srcObject = null;
  $("stage").classList.remove("live");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  $("start").disabled = false;
  $("stop").disabled = true;
  setStatus(message, error);
}

function loop() {
  if (!state.ws) return;
  const interval = 1000 / Number($("fps").value);
  const now = performance.now();
  if (!state.inFlight && now - state.lastSent >= interval && video.videoWidth) {
    state.lastSent = now;
    sendFrame();
  }
  state.timer = setTimeout(loop, Math.max(5, interval / 4));
}

function sendFrame() {
  const scale = Math.min(1, SEND_WIDTH / video.videoWidth);
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grabCtx.drawImage(video, 0, 0, grab.width, grab.height);
  state.inFlight = true;
  grab.toBlob(async (blob) => {
    const ws = state.ws;
    if (!blob || !ws || ws.readyState !== WebSocket.OPEN) { state.inFlight = false; return; }
    ws.send(await blob.arrayBuffer());
    state.sent.push(performance.now());
  }, "image/jpeg", JPEG_QUALITY);
}

function onMessage(msg) {
  if (msg.type === "ready") return;
  if (msg.type === "final") { renderTop(msg.top || []); renderWords(msg.words || []); return; }
  state.inFlight = false;
  if (msg.type === "error") { setStatus(`Server: ${msg.detail}`, true); return; }
  if (msg.type !== "result") return;   // "dropped": the server asked us to slow down; the next frame will go
  if ($("status").classList.contains("error")) setStatus(CONNECTED);
  if (msg.landmarks && $("draw").checked) drawSkeleton(ctx, msg.landmarks);
  renderTop(msg.top || []);
  renderWords(msg.words || []);
  const now = performance.now();
  state.sent = state.sent.filter((t) => now - t < 2000);
  $("stats").textContent = `${(state.sent.length / 2).toFixed(1)} frames/s · server ${msg.ms} ms/frame` +
    (msg.signing ? " · signing" : "");
}

function renderTop(top) {
  const list = $("top");
  list.replaceChildren(...top.map(({ label, p }) => {
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
  sign.textContent = top.length ? top[0].label : "–";
  sign.classList.toggle("unsure", !top.length || top[0].p < 0.5);
}

function renderWords(words) {
  // The server keeps every word of the stream; "Clear words" hides the ones shown so far.
  if (words.length < state.hidden) state.hidden = 0;   // a new stream
  state.words = words;
  $("words").replaceChildren(...words.slice(state.hidden).map((w) => {
    const li = document.createElement("li");
    li.textContent = w.label;
    const small = document.createElement("small");
    small.textContent = `${Math.round(w.confidence * 100)}%`;
    li.append(small);
    return li;
  }));
}
