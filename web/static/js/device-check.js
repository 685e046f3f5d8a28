// The patient's device check before the waiting room: camera, microphone, speaker and the round trip
// to the server, each shown as it passes or fails. What it found is kept for this tab only and sent
// with the patient's room token request, so the doctor who admits them sees it.

const $ = (id) => document.getElementById(id);
const strings = JSON.parse($("check-strings").textContent);
const SLOW_RTT_MS = 600;  // beyond this, video calls suffer; the patient is told, not stopped
const PINGS = 5;

const passed = { camera: false, microphone: false, speaker: false, network: false };
// What the doctor sees: true (works), false (does not), null (not tried).
const found = { camera: null, microphone: null, speaker: null, rtt_ms: null };
const FOUND_KEY = `device-check:${location.pathname.split("/")[2]}`;  // /visit/<token>/check; room-page.js reads it

function mark(name, ok, note = "") {
  const item = $(`check-${name}`);
  item.dataset.state = ok ? "ok" : "failed";
  item.querySelector(".result").textContent = `${ok ? "✓ " + strings.ok : "✗ " + strings.failed}${note ? " · " + note : ""}`;
  passed[name] = ok;
  if (name !== "network") found[name] = ok;
  const all = Object.values(passed).every(Boolean);
  $("to-room").setAttribute("aria-disabled", String(!all));
  $("check-summary").textContent = all ? strings.allGood : strings.someFailed;
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

$("start-check").addEventListener("click", async () => {
  $("start-check").disabled = true;
  const audio = new AudioContext();
  checkNetwork();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    mark("camera", false, strings.denied);
    mark("microphone", false, strings.denied);
    $("start-check").disabled = false;
    return;
  }
  $("play-tone").disabled = false;
  await Promise.all([checkCamera(stream), checkMicrophone(stream, audio)]);
  $("play-tone").addEventListener("click", () => playTone(audio));
  $("heard-yes").addEventListener("click", () => mark("speaker", true));
  $("heard-no").addEventListener("click", () => mark("speaker", false, strings.notHeard));
  // The waiting room opens its own camera: let this one go.
  window.addEventListener("pagehide", () => stream.getTracks().forEach((t) => t.stop()));
});

function keepFindings() {
  sessionStorage.setItem(FOUND_KEY, JSON.stringify(found));
}

$("to-room").addEventListener("click", (event) => {
  if ($("to-room").getAttribute("aria-disabled") === "true") event.preventDefault();
  else keepFindings();
});
$("skip-check").addEventListener("click", keepFindings);
