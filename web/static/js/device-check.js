// The patient's device check before the waiting room: camera, microphone, speaker, the round trip to the
// server and the bandwidth to and from it, each shown as it passes or fails. What it found is kept for this
// tab only and sent with the patient's room token request, so the doctor who admits them sees it; so is the
// patient's choice to start with audio only, which room-page.js carries out.

import { bandwidth } from "./link-speed.js";

const $ = (id) => document.getElementById(id);
const strings = JSON.parse($("check-strings").textContent);
const SLOW_RTT_MS = 600;  // beyond this, video calls suffer; the patient is told, not stopped
const PINGS = 5;
// Below this either way (kbit/s), offer audio only: the relay's low layer alone is 150 kbit/s, audio (Opus)
// up to about 40, and their packets' overhead and a link that varies need the rest; a slower link makes
// even the low layer stutter and takes the sound down with it. Told, not stopped, like the round trip.
const LOW_KBPS = 300;
const FIRST_DOWNLOAD = 512 * 1024;
const FULL_DOWNLOAD = 2 * 1024 * 1024;  // the probe's most; only when the first came in fast
const FAST_ENOUGH_MS = 1000;
const UPLOAD = 256 * 1024;

// Each check's outcome: true (passed), false (failed), null (not finished yet).
const passed = { camera: null, microphone: null, speaker: null, network: null };
// What the doctor sees: true (works), false (does not), null (not tried); bandwidth in kbit/s or null.
const found = { camera: null, microphone: null, speaker: null, rtt_ms: null, down_kbps: null, up_kbps: null };
const TOKEN = location.pathname.split("/")[2];  // /visit/<token>/check
const FOUND_KEY = `device-check:${TOKEN}`;  // room-page.js reads it
const AUDIO_ONLY_KEY = `device-check:${TOKEN}:audio-only`;  // "true" when the patient chose to start with audio only

function mark(name, ok, note = "") {
  const item = $(`check-${name}`);
  item.dataset.state = ok ? "ok" : "failed";
  item.querySelector(".result").textContent = `${ok ? "✓ " + strings.ok : "✗ " + strings.failed}${note ? " · " + note : ""}`;
  passed[name] = ok;
  if (name !== "network") found[name] = ok;
  summarize();
}

/** The room button and the summary line, from every check's outcome so far. */
function summarize() {
  const outcomes = Object.values(passed);
  const all = outcomes.every((outcome) => outcome === true);
  $("to-room").setAttribute("aria-disabled", String(!all));
  // Nothing is said of the whole while a check that has not failed is still running.
  const failed = outcomes.includes(false);
  $("check-summary").textContent = all ? strings.allGood : failed ? strings.someFailed : "";
}

async function checkCamera(stream) {
  const video = $("preview");
  video.srcObject = stream;
  const [track] = stream.getVideoTracks();
  if (!track) return mark("camera", false, strings.noCamera);
  // A picture is a decoded frame with a size, not just a track that exists.
  const frame = new Promise((resolve) => video.requestVideoFrameCallback(() => resolve(true)));
  const timeout = new Promise((resolve) => setTimeout(() => resolve(false), 5000));
  const ok = (await Promise.race([frame, timeout])) && video.videoWidth > 0;
  mark("camera", ok, ok ? `${video.videoWidth}×${video.videoHeight}` : strings.noCamera);
}

async function checkMicrophone(stream, audio) {
  if (!stream.getAudioTracks().length) return mark("microphone", false, strings.noMicrophone);
  const analyser = audio.createAnalyser();
  analyser.fftSize = 1024;
  audio.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const started = performance.now();
  let loudest = 0;
  return new Promise((resolve) => {
    const listen = () => {
      analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((sum, s) => sum + s * s, 0) / samples.length);
      loudest = Math.max(loudest, rms);
      $("mic-level").value = Math.min(1, rms * 4);
      if (loudest > 0.01) {
        mark("microphone", true);
        resolve();
      } else if (performance.now() - started > 8000) {
        mark("microphone", false, strings.noMicrophone);
        resolve();
      } else {
        requestAnimationFrame(listen);
      }
    };
    listen();
  });
}

function playTone(audio) {
  const tone = audio.createOscillator();
  const gain = audio.createGain();
  gain.gain.value = 0.2;
  tone.frequency.value = 660;
  tone.connect(gain).connect(audio.destination);
  tone.start();
  tone.stop(audio.currentTime + 1);
  $("heard-question").hidden = false;
}

async function checkNetwork() {
  // The round trip of a small request to this server, median of a few, as the call's signaling sees it.
  const times = [];
  try {
    for (let i = 0; i < PINGS; i++) {
      const start = performance.now();
      const response = await fetch("/healthz", { cache: "no-store" });
      await response.arrayBuffer();
      times.push(performance.now() - start);
    }
  } catch {
    return mark("network", false, strings.offline);
  }
  times.sort((a, b) => a - b);
  const median = Math.round(times[Math.floor(times.length / 2)]);
  $("check-network").dataset.rtt = String(median);
  found.rtt_ms = median;
  const note = strings.rtt.replace("{ms}", String(median));
  mark("network", median < SLOW_RTT_MS, median < SLOW_RTT_MS ? note : `${note} · ${strings.slow}`);
}

/** POST a probe request with the link's token; the answer's body read whole. */
async function probe(path, fields) {
  const response = await fetch(`/api/guest/bandwidth/${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ guest: TOKEN, ...fields }),
    cache: "no-store",
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`bandwidth probe refused: ${response.status}`);
  return response.arrayBuffer();
}

/** kbit/s of ``bytes`` moved in ``ms`` (the request's own round trip included, so a little under the link). */
const kbps = (bytes, ms) => Math.round((bytes * 8) / Math.max(ms, 1));

async function timedDownload(bytes) {
  const start = performance.now();
  const body = await probe("download", { bytes });
  const ms = performance.now() - start;
  return { ms, kbps: kbps(body.byteLength, ms) };
}

async function measureBandwidth() {
  const row = $("check-bandwidth");
  row.querySelector(".result").textContent = strings.measuring;
  try {
    let down = await timedDownload(FIRST_DOWNLOAD);
    if (down.ms < FAST_ENOUGH_MS) down = await timedDownload(FULL_DOWNLOAD);  // a fast link: time it longer
    // Filler the server only counts; random letters, so nothing on the way could shrink it.
    const letters = new Uint8Array(UPLOAD);
    for (let at = 0; at < UPLOAD; at += 65536) crypto.getRandomValues(letters.subarray(at, at + 65536));  // its most
    const data = new TextDecoder().decode(letters.map((b) => 97 + (b % 26)));
    const start = performance.now();
    await probe("upload", { data });
    found.down_kbps = down.kbps;
    found.up_kbps = kbps(UPLOAD, performance.now() - start);
  } catch (err) {
    // Not measured is not a failure: the room stays open to the patient.
    console.warn("bandwidth not measured", err);
    row.dataset.state = "unknown";
    row.querySelector(".result").textContent = strings.notMeasured;
    return;
  }
  const low = found.down_kbps < LOW_KBPS || found.up_kbps < LOW_KBPS;
  const note = bandwidth(found.down_kbps, found.up_kbps, strings);
  row.dataset.state = low ? "low" : "ok";
  row.dataset.downKbps = String(found.down_kbps);
  row.dataset.upKbps = String(found.up_kbps);
  row.querySelector(".result").textContent = low ? `${note} · ${strings.lowBandwidth}` : note;
  if (low) offerAudioOnly();
}

/** Too slow for video: suggest audio only, chosen already unless the patient said otherwise in this tab. */
function offerAudioOnly() {
  const box = /** @type {HTMLInputElement} */ ($("start-audio-only"));
  box.checked = sessionStorage.getItem(AUDIO_ONLY_KEY) !== "false";
  sessionStorage.setItem(AUDIO_ONLY_KEY, String(box.checked));
  $("audio-only-offer").hidden = false;
}

$("start-audio-only").addEventListener("change", (event) => {
  sessionStorage.setItem(AUDIO_ONLY_KEY, String(/** @type {HTMLInputElement} */ (event.target).checked));
});

let networkChecked = false;
$("start-check").addEventListener("click", async () => {
  $("start-check").disabled = true;
  const audio = new AudioContext();
  if (!networkChecked) {  // once: a second try (after a denial) is the camera's and the microphone's
    networkChecked = true;
    checkNetwork().then(measureBandwidth);  // one after the other: the pings would slow the download
  }
  for (const name of ["camera", "microphone"]) {  // tried again (after a denial): not failed while it runs
    passed[name] = null;
    $(`check-${name}`).dataset.state = "waiting";
    $(`check-${name}`).querySelector(".result").textContent = "";
  }
  summarize();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    mark("camera", false, strings.denied);
    mark("microphone", false);  // (the camera's row says why, of both)
    $("start-check").disabled = false;
    return;
  }
  // The test sound is offered while the camera and the microphone are being checked, and answers at once.
  $("play-tone").addEventListener("click", () => playTone(audio));
  $("heard-yes").addEventListener("click", () => mark("speaker", true));
  $("heard-no").addEventListener("click", () => mark("speaker", false, strings.notHeard));
  // The waiting room opens its own camera: let this one go.
  window.addEventListener("pagehide", () => stream.getTracks().forEach((t) => t.stop()));
  $("play-tone").disabled = false;
  await Promise.all([checkCamera(stream), checkMicrophone(stream, audio)]);
});

function keepFindings() {
  sessionStorage.setItem(FOUND_KEY, JSON.stringify(found));
}

$("to-room").addEventListener("click", (event) => {
  if ($("to-room").getAttribute("aria-disabled") === "true") event.preventDefault();
  else keepFindings();
});
$("skip-check").addEventListener("click", keepFindings);
