// The deblur page: drop or pick photos; each is sent to /api/deblur in turn, its progress
// polled from /api/jobs/TOKEN, and the result shown as a before / after view with a
// draggable divider, the blur scores and a download link. Plain browser JavaScript, no
// libraries, nothing loaded from elsewhere.
"use strict";

const POLL_MS = 400;
const queue = [];   // cards waiting to be sent, in order
let busy = false;   // one photo at a time from this page; the server queues other clients

const $ = (root, selector) => root.querySelector(selector);

function token() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setStatus(card, text, fraction) {
  $(card, ".status-text").textContent = text;
  const bar = $(card, ".bar");
  bar.hidden = fraction === undefined;
  if (fraction !== undefined) $(card, ".bar-fill").style.width = `${Math.round(fraction * 100)}%`;
}

function fail(card, message) {
  card.classList.add("failed");
  card.dataset.state = "failed";
  setStatus(card, "failed");
  const error = $(card, ".error");
  error.textContent = message;
  error.hidden = false;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function showQueue() {
  queue.forEach((card, i) => {
    const ahead = i + (busy ? 1 : 0);
    setStatus(card, ahead ? `waiting: ${plural(ahead, "photo")} ahead` : "waiting");
  });
}

function addFiles(files) {
  for (const file of files) {
    const card = $(document.getElementById("card-template").content, ".card").cloneNode(true);
    $(card, ".name").textContent = file.name || "photo";
    card.file = file;
    card.dataset.state = "queued";
    document.getElementById("results").append(card);
    queue.push(card);
  }
  showQueue();
  pump();
}

async function pump() {
  if (busy) return;
  const card = queue.shift();
  if (!card) return;
  busy = true;
  showQueue();
  try {
    await deblur(card);
  } catch (err) {
    fail(card, String(err && err.message ? err.message : err));
  } finally {
    busy = false;
    pump();
  }
}

function send(url, body, job, onUpload) {
  // XMLHttpRequest rather than fetch: it reports upload progress.
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "blob";
    if (job) xhr.setRequestHeader("X-Deblur-Job", job);
    if (onUpload) xhr.upload.onprogress = (e) => e.lengthComputable && onUpload(e.loaded / e.total);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => resolve(xhr);
    xhr.send(body);
  });
}

async function blobError(xhr) {
  try {
    const body = JSON.parse(await xhr.response.text());
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return xhr.status ? `the server answered ${xhr.status}` : "no answer: is deblur serve still running?";
}

function form(blob, name) {
  const data = new FormData();
  data.append("file", blob, name);
  return data;
}

async function poll(card, job, stop) {
  while (!stop.done) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (stop.done) break;
    try {
      const state = await (await fetch(`/api/jobs/${job}`, { cache: "no-store" })).json();
      if (stop.done) break;
      if (state.state === "waiting") {
        setStatus(card, state.ahead ? `waiting for the server: ${plural(state.ahead, "request")} ahead` : "starting…");
      } else if (state.state === "running") {
        setStatus(card, state.total ? `deblurring: tile ${state.done} of ${state.total}` : "deblurring…",
          state.total ? state.done / state.total : undefined);
      }
    } catch (_) { /* the next poll will tell */ }
  }
}

async function deblur(card) {
  const file = card.file;
  const job = token();
  const stop = { done: false };
  card.dataset.state = "sending";
  setStatus(card, "uploading", 0);
  const uploaded = () => { setStatus(card, "waiting for the server"); };
  const polling = poll(card, job, stop);
  const xhr = await send("/api/deblur", form(file, file.name || "photo"), job, (f) => {
    setStatus(card, `uploading ${Math.round(f * 100)}%`, f);
    if (f >= 1) uploaded();
  });
  stop.done = true;
  await polling;
  if (xhr.status !== 200) {
    fail(card, await blobError(xhr));
    return;
  }
  setStatus(card, "preparing the view…");
  await showResult(card, file, xhr);
}

function filenameFrom(disposition, fallback) {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
  if (star) {
    try { return decodeURIComponent(star[1]); } catch (_) { /* fall through */ }
  }
  const plain = /filename="([^"]+)"/i.exec(disposition || "");
  return plain ? plain[1] : fallback;
}

// Show a blob in an <img>; formats the browser cannot show (TIFF) go through /api/preview.
async function showImage(img, blob, name) {
  const url = URL.createObjectURL(blob);
  if (await loads(img, url)) return url;
  const xhr = await send("/api/preview", form(blob, name));
  if (xhr.status === 200 && (await loads(img, URL.createObjectURL(xhr.response)))) return url;
  throw new Error(xhr.status === 200 ? `this browser cannot show ${name}` : await blobError(xhr));
}

function loads(img, url) {
  return new Promise((resolve) => {
    img.onload = () => resolve(true);
    img.onerror = () => resolve(false);
    img.src = url;
  });
}

async function showResult(card, file, xhr) {
  const result = xhr.response;
  const name = filenameFrom(xhr.getResponseHeader("Content-Disposition"), "deblurred");
  const before = xhr.getResponseHeader("X-Blur-Score-Before");
  const after = xhr.getResponseHeader("X-Blur-Score-After");
  const notes = xhr.getResponseHeader("X-Deblur-Notes");
  const resultUrl = await showImage($(card, ".after"), result, name);
  await showImage($(card, ".before"), file, file.name || "photo");
  const compare = $(card, ".compare");
  compare.hidden = false;
  makeDivider(compare);
  $(card, ".scores").textContent = before && after
    ? `blur score ${Number(before).toFixed(3)} → ${Number(after).toFixed(3)} (0 sharp … 1 very blurry)` : "";
  const link = $(card, ".download");
  link.href = resultUrl;
  link.download = name;
  link.textContent = `Download ${name}`;
  $(card, ".facts").hidden = false;
  if (notes) {
    $(card, ".notes").textContent = `note: ${notes}`;
    $(card, ".notes").hidden = false;
  }
  card.classList.add("finished");
  card.dataset.state = "done";
  setStatus(card, "done");
}

function makeDivider(compare) {
  const set = (percent) => {
    const p = Math.min(100, Math.max(0, percent));
    compare.style.setProperty("--pos", `${p}%`);
    compare.setAttribute("aria-valuenow", String(Math.round(p)));
  };
  const fromPointer = (e) => {
    const box = compare.getBoundingClientRect();
    set(((e.clientX - box.left) / box.width) * 100);
  };
  compare.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    compare.setPointerCapture(e.pointerId);
    fromPointer(e);
    e.preventDefault();
  });
  compare.addEventListener("pointermove", (e) => {
    if (compare.hasPointerCapture(e.pointerId)) fromPointer(e);
  });
  compare.addEventListener("keydown", (e) => {
    const now = Number(compare.getAttribute("aria-valuenow"));
    const step = e.shiftKey ? 10 : 2;
    const keys = { ArrowLeft: now - step, ArrowRight: now + step, Home: 0, End: 100 };
    if (e.key in keys) {
      set(keys[e.key]);
      e.preventDefault();
    }
  });
  set(50);
}

async function showServer() {
  const info = document.getElementById("server-info");
  try {
    const h = await (await fetch("/api/health", { cache: "no-store" })).json();
    const weights = h.weights && h.weights.name ? `weights ${h.weights.name}` : "weights";
    info.textContent = `${weights} · ${h.device} · ${h.precision} · deblur-cli ${h.version} · up to ${h.max_upload_mb} MB per photo`;
  } catch (_) {
    info.textContent = "the server does not answer: is deblur serve running?";
  }
}

function setUp() {
  const drop = document.getElementById("drop");
  const pick = document.getElementById("pick");
  pick.addEventListener("change", () => {
    addFiles(Array.from(pick.files));
    pick.value = "";
  });
  // A photo dropped anywhere on the page counts; the browser must not open it instead.
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  document.addEventListener("dragleave", (e) => {
    if (!e.relatedTarget) drop.classList.remove("over");
  });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const files = Array.from((e.dataTransfer && e.dataTransfer.files) || []);
    if (files.length) addFiles(files);
  });
  showServer();
}

document.addEventListener("DOMContentLoaded", setUp);
