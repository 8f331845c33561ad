// The deblur page: drop or pick photos; each is sent to /api/deblur in turn (with the weights,
// and the method where the server offers several, chosen above), its progress polled from
// /api/jobs/TOKEN with an estimate of the time left, and the result shown as a before / after
// view with a draggable divider, at the page's width or at 100 % / 200 % (deblurring is judged
// at full size), the blur scores and a download link. Any photo can be cancelled while it
// waits or runs; "Download all" saves every result in one ZIP file. Plain browser
// JavaScript, no libraries, nothing loaded from elsewhere.
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

function settle(card, state, text) {
  card.classList.add({ done: "finished", failed: "failed" }[state] || state);
  card.dataset.state = state;
  $(card, ".cancel").hidden = true;
  setStatus(card, text);
  showDownloadAll();
}

function fail(card, message) {
  settle(card, "failed", "failed");
  const error = $(card, ".error");
  error.textContent = message;
  error.hidden = false;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// "about 40 s left", "about 3 min left": rounded, as such estimates deserve.
function timeLeft(seconds) {
  if (seconds < 10) return "a few seconds left";
  if (seconds < 90) return `about ${Math.round(seconds / 5) * 5} s left`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

function showQueue() {
  queue.forEach((card, i) => {
    const ahead = i + (busy ? 1 : 0);
    setStatus(card, ahead ? `waiting: ${plural(ahead, "photo")} ahead` : "waiting");
  });
}

// ---- choices: weights (and method) -------------------------------------------------------

let weightless = [];  // methods that take no weights (the server says which)

function chosen() {
  const fields = {};
  const method = document.getElementById("method");
  if (!document.getElementById("method-choice").hidden && method.value) fields.method = method.value;
  const weights = document.getElementById("weights");
  if (!weights.disabled && weights.value) fields.weights = weights.value;
  return fields;
}

function methodChanged() {
  const method = document.getElementById("method").value;
  const weights = document.getElementById("weights");
  weights.disabled = weightless.includes(method) || weights.options.length < 2;
}

// What the server offers (GET /api/health "choices"): its weights, and its methods where it
// has more than one; the method list comes from the server's registry, never from here.
function fillChoices(choices) {
  const fill = (select, values) => select.replaceChildren(...values.map((v) => new Option(v, v)));
  const weights = (choices && choices.weights) || [];
  const methods = (choices && choices.methods) || [];
  weightless = (choices && choices.methods_without_weights) || [];
  fill(document.getElementById("weights"), weights);
  fill(document.getElementById("method"), methods);
  document.getElementById("weights-choice").hidden = weights.length === 0;
  document.getElementById("method-choice").hidden = methods.length < 2;
  document.getElementById("choices").hidden = weights.length === 0 && methods.length < 2;
  methodChanged();
}

// ---- the queue of this page --------------------------------------------------------------

function addFiles(files) {
  for (const file of files) {
    const card = $(document.getElementById("card-template").content, ".card").cloneNode(true);
    $(card, ".name").textContent = file.name || "photo";
    card.file = file;
    card.fields = chosen();  // the choice when the photo was added, whatever changes later
    card.dataset.state = "queued";
    $(card, ".cancel").addEventListener("click", () => cancel(card));
    document.getElementById("results").append(card);
    queue.push(card);
  }
  showQueue();
  pump();
}

function cancel(card) {
  const waiting = queue.indexOf(card);
  if (waiting >= 0) {
    queue.splice(waiting, 1);
    settle(card, "cancelled", "cancelled");
    showQueue();
  } else if (card.xhr) {
    card.cancelled = true;
    card.xhr.abort();  // the server sees the client leave: it stops the work at the next tile
  }
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

function send(url, body, job, onUpload, card) {
  // XMLHttpRequest rather than fetch: it reports upload progress.
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "blob";
    if (job) xhr.setRequestHeader("X-Deblur-Job", job);
    if (onUpload) xhr.upload.onprogress = (e) => e.lengthComputable && onUpload(e.loaded / e.total);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => resolve(xhr);
    xhr.onabort = () => resolve(xhr);
    if (card) card.xhr = xhr;
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

function form(blob, name, fields) {
  const data = new FormData();
  for (const [key, value] of Object.entries(fields || {})) data.append(key, value);
  data.append("file", blob, name);
  return data;
}

function runningText(state) {
  if (!state.total || state.total < 2) return "deblurring…";  // one tile: nothing to count
  const done = `deblurring: ${state.done} of ${state.total} tiles done`;
  if (!state.done || !state.seconds) return `${done} · estimating the time left…`;
  return `${done} · ${timeLeft((state.seconds / state.done) * (state.total - state.done))}`;
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
      } else if (state.state === "loading") {
        setStatus(card, `loading the weights ${state.weights || ""}…`.replace(" …", "…"));
      } else if (state.state === "running") {
        setStatus(card, runningText(state), state.total > 1 ? state.done / state.total : undefined);
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
  const polling = poll(card, job, stop);
  const xhr = await send("/api/deblur", form(file, file.name || "photo", card.fields), job, (f) => {
    setStatus(card, f >= 1 ? "waiting for the server" : `uploading ${Math.round(f * 100)}%`, f >= 1 ? undefined : f);
  }, card);
  stop.done = true;
  await polling;
  card.xhr = null;
  $(card, ".cancel").hidden = true;  // the answer is here: nothing left to stop
  if (card.cancelled) {
    settle(card, "cancelled", "cancelled");
    return;
  }
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
  const weights = xhr.getResponseHeader("X-Deblur-Weights");
  const resultUrl = await showImage($(card, ".after"), result, name);
  await showImage($(card, ".before"), file, file.name || "photo");
  const compare = $(card, ".compare");
  compare.hidden = false;
  $(card, ".zoom").hidden = false;
  makeDivider(compare);
  makeZoom(card);
  const scores = before && after
    ? `blur score ${Number(before).toFixed(3)} → ${Number(after).toFixed(3)} (0 sharp … 1 very blurry)` : "";
  $(card, ".scores").textContent = [scores, weights ? `weights ${weights}` : ""].filter(Boolean).join(" · ");
  const link = $(card, ".download");
  link.href = resultUrl;
  link.download = name;
  link.textContent = `Download ${name}`;
  card.result = { blob: result, name };
  $(card, ".facts").hidden = false;
  if (notes) {
    $(card, ".notes").textContent = `note: ${notes}`;
    $(card, ".notes").hidden = false;
  }
  settle(card, "done", "done");
}

// ---- the before / after view ---------------------------------------------------------------

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

// Fit: the whole photo at the page's width. 100 %: one photo pixel per screen pixel, in a
// frame that scrolls (deblurring is judged at full size); 200 %: each pixel twice as big.
function makeZoom(card) {
  const viewport = $(card, ".viewport");
  const compare = $(card, ".compare");
  const after = $(card, ".after");
  const buttons = card.querySelectorAll(".zoom button");
  const zoomTo = (zoom) => {
    const centre = [
      (viewport.scrollLeft + viewport.clientWidth / 2) / Math.max(1, viewport.scrollWidth),
      (viewport.scrollTop + viewport.clientHeight / 2) / Math.max(1, viewport.scrollHeight),
    ];
    compare.classList.toggle("zoomed", zoom !== "fit");
    viewport.classList.toggle("zoomed", zoom !== "fit");
    if (zoom !== "fit") {
      const scale = Number(zoom) / (window.devicePixelRatio || 1);
      compare.style.setProperty("--width", `${after.naturalWidth * scale}px`);
    }
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.zoom === zoom)));
    viewport.scrollLeft = centre[0] * viewport.scrollWidth - viewport.clientWidth / 2;
    viewport.scrollTop = centre[1] * viewport.scrollHeight - viewport.clientHeight / 2;
  };
  buttons.forEach((b) => b.addEventListener("click", () => zoomTo(b.dataset.zoom)));
}

// ---- download all: one ZIP of every result (stored: photos are compressed already) ---------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function uniqueNames(names) {
  const seen = new Set();
  return names.map((name) => {
    let candidate = name;
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    for (let i = 2; seen.has(candidate.toLowerCase()); i++) candidate = `${stem} (${i})${ext}`;
    seen.add(candidate.toLowerCase());
    return candidate;
  });
}

// A ZIP archive (PKWARE APPNOTE: local headers, data, central directory, end record), files
// stored as they are, names in UTF-8 (flag bit 11). Up to 4 GiB in all (no ZIP64).
async function zip(files) {
  const now = new Date();
  const time = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
  const date = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  const parts = [];
  const central = [];
  let offset = 0;
  for (const { name, blob } of files) {
    const data = new Uint8Array(await blob.arrayBuffer());
    const encoded = new TextEncoder().encode(name);
    const crc = crc32(data);
    const header = (signature, size) => {
      const view = new DataView(new ArrayBuffer(size));
      view.setUint32(0, signature, true);
      return view;
    };
    const local = header(0x04034b50, 30);
    [[4, 20], [6, 0x0800], [8, 0], [10, time], [12, date], [26, encoded.length], [28, 0]]
      .forEach(([at, v]) => local.setUint16(at, v, true));
    [[14, crc], [18, data.length], [22, data.length]].forEach(([at, v]) => local.setUint32(at, v, true));
    const entry = header(0x02014b50, 46);
    [[4, 20], [6, 20], [8, 0x0800], [10, 0], [12, time], [14, date], [28, encoded.length], [30, 0], [32, 0], [34, 0], [36, 0]]
      .forEach(([at, v]) => entry.setUint16(at, v, true));
    [[16, crc], [20, data.length], [24, data.length], [38, 0], [42, offset]].forEach(([at, v]) => entry.setUint32(at, v, true));
    parts.push(local, encoded, data);
    central.push(entry, encoded);
    offset += 30 + encoded.length + data.length;
  }
  const size = central.reduce((n, part) => n + part.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  [[8, files.length], [10, files.length], [20, 0]].forEach(([at, v]) => end.setUint16(at, v, true));
  end.setUint32(12, size, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

function results() {
  return [...document.querySelectorAll(".card")].filter((c) => c.result).map((c) => c.result);
}

function showDownloadAll() {
  const count = results().length;
  const button = document.getElementById("download-all");
  button.hidden = count < 2;
  button.textContent = `Download all ${count} (ZIP)`;
}

async function downloadAll() {
  const done = results();
  const total = done.reduce((n, r) => n + r.blob.size, 0);
  const status = document.getElementById("download-all-status");
  if (total > 0xffff0000) {
    status.textContent = "too big for one ZIP file (4 GB); use each photo's own Download link";
    return;
  }
  status.textContent = "making the ZIP file…";
  const names = uniqueNames(done.map((r) => r.name));
  const blob = await zip(done.map((r, i) => ({ name: names[i], blob: r.blob })));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "deblurred.zip";
  document.body.append(link);
  link.click();
  link.remove();
  status.textContent = "";
}

// ---- the page ----------------------------------------------------------------------------

async function showServer() {
  const info = document.getElementById("server-info");
  try {
    const h = await (await fetch("/api/health", { cache: "no-store" })).json();
    const weights = h.weights && h.weights.name ? `weights ${h.weights.name}` : "weights";
    info.textContent = `${weights} · ${h.device} · ${h.precision} · deblur-cli ${h.version} · up to ${h.max_upload_mb} MB per photo`;
    fillChoices(h.choices);
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
  document.getElementById("download-all").addEventListener("click", downloadAll);
  document.getElementById("method").addEventListener("change", methodChanged);
  showServer();
}

document.addEventListener("DOMContentLoaded", setUp);
