// The consultation room page: draws videos, the lobby, chat and the connection state, and reacts to
// buttons. All WebRTC and signaling lives in call.js and signaling.js; this file only sets callbacks.

import { ConsultationCall } from "./call.js";
import { ERRORS } from "./codes.js";
import { signalingUrl } from "./signaling.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const strings = JSON.parse(document.getElementById("room-strings").textContent);
const $ = (id) => document.getElementById(id);

const stateLabel = $("connection-state");
const videos = $("videos");
const micButton = $("toggle-mic");
const cameraButton = $("toggle-camera");
const hangUpButton = $("hang-up");
const recordButton = $("toggle-recording");
const shareButton = $("share-screen");
const consentBox = $("recording-consent");
let grants = { admit: false, moderate: false, record: false };

/** @param {string} state */
function showState(state) {
  stateLabel.dataset.state = state;
  stateLabel.textContent = strings[state] ?? state;
  $("lobby-notice").hidden = state !== "lobby";
  if (["ended", "denied", "removed", "consent-withdrawn", "invitation-revoked"].includes(state)) {
    endControls(state === "ended");
  }
}

/** What the patient's device check found on the way here (device-check.js keeps it), or null. */
function deviceCheck() {
  try {
    return JSON.parse(sessionStorage.getItem(`device-check:${config.guest}`) ?? "null");
  } catch {
    return null;
  }
}

/** A room token for this page: clinicians through their session, guests through their link. */
async function fetchToken() {
  const response = await fetch(config.roomTokenUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(config.guest ? { guest: config.guest, device_check: deviceCheck() } : {}),
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`room token refused: ${response.status}`);
  const answer = await response.json();
  grants = answer.grants;
  return { token: answer.token, iceServers: answer.ice_servers };
}
const signalingPath = `/api/consultations/${config.consultationId}/signaling`;

/** Camera and microphone if we can, microphone alone if not, else join to watch and listen. */
async function localMedia() {
  for (const constraints of [{ audio: true, video: { width: 640, height: 480 } }, { audio: true }]) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      console.warn("getUserMedia failed", constraints, err);
    }
  }
  showState("noMedia");
  return null;
}

/** @param {string} id */
function tileOf(id) {
  return document.querySelector(`[data-participant="${CSS.escape(id)}"]`);
}

/** @param {{id: string, name: string}} participant */
function tileFor(participant) {
  let tile = tileOf(participant.id);
  if (!tile) {
    tile = document.createElement("figure");
    tile.className = "tile remote";
    tile.dataset.participant = participant.id;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    const caption = document.createElement("figcaption");
    caption.textContent = participant.name;
    const badges = document.createElement("div");
    badges.className = "badges";
    tile.append(video, caption, badges);
    if (grants.moderate) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = strings.remove;
      remove.addEventListener("click", () => {
        // Removing someone ends their part in the consultation: ask first.
        if (window.confirm(strings.confirmRemove.replace("{name}", participant.name))) call.remove(participant.id);
      });
      tile.append(remove);
    }
    videos.append(tile);
  }
  return tile;
}

function badge(tile, key, text, on) {
  let element = tile.querySelector(`[data-badge="${key}"]`);
  if (on && !element) {
    element = document.createElement("span");
    element.className = "badge";
    element.dataset.badge = key;
    element.textContent = text;
    tile.querySelector(".badges").append(element);
  } else if (!on && element) {
    element.remove();
  }
}

function endControls(canRejoin) {
  micButton.disabled = cameraButton.disabled = hangUpButton.disabled = shareButton.disabled = true;
  if (canRejoin && !$("rejoin")) {
    const rejoin = document.createElement("a");
    rejoin.id = "rejoin";
    rejoin.className = "button primary";
    rejoin.href = location.pathname;
    rejoin.textContent = strings.rejoin;
    hangUpButton.after(rejoin);
  }
}

const localStream = await localMedia();
if (localStream) $("local-video").srcObject = localStream;

const call = new ConsultationCall({ signalingUrl: signalingUrl(signalingPath), fetchToken, localStream });
// A handle for debugging in the console and for the end-to-end tests' getStats() checks.
window.telemedCall = call;

call.onstatechange = showState;
call.onparticipants = (participants) => {
  $("waiting-note").hidden = participants.length > 0;
};
call.onremotestream = (participant, stream) => {
  const tile = tileFor(participant);
  badge(tile, "no-consent", strings.noConsent, !participant.recording_consent);
  const video = tile.querySelector("video");
  if (video.srcObject !== stream) video.srcObject = stream;
  video.play().catch(() => {
    // Autoplay with sound was refused: play muted and let one click bring the sound back.
    video.muted = true;
    video.play();
    document.addEventListener("click", () => { video.muted = false; }, { once: true });
  });
};
call.onparticipantleft = (id) => tileOf(id)?.remove();
call.onpeerstatus = (id, status) => {
  const tile = tileOf(id);
  if (!tile) return;
  tile.toggleAttribute("data-reconnecting", status === "reconnecting");
  badge(tile, "reconnecting", strings.peerReconnecting, status === "reconnecting");
};
call.onrecording = (state) => {
  $("recording-indicator").hidden = !state.on;
  recordButton.hidden = !grants.record;
  recordButton.setAttribute("aria-pressed", String(state.on));
  recordButton.textContent = state.on ? strings.stopRecording : strings.startRecording;
  const reasons = { "consent-withdrawn": strings.recordingConsentWithdrawn, "consent-missing": strings.recordingConsentMissing,
    "relay-lost": strings.recordingRelayLost, left: strings.recordingLeft, stopped: strings.recordingStopped };
  $("recording-message").textContent = state.on ? "" : (reasons[state.reason] ?? "");
};
call.onconsent = (id, given) => {
  if (id === call.self?.id) consentBox.checked = given;
  const tile = tileOf(id);
  if (tile) badge(tile, "no-consent", strings.noConsent, !given);
};
call.onerror = (error) => {
  if (error.code === ERRORS.CONSENT_MISSING || error.code === ERRORS.NOT_ALLOWED) $("recording-message").textContent = error.message;
  if (error.code === ERRORS.CHAT_NOT_STORED) {
    // Nobody was shown the line: give it back to its writer rather than lose it.
    const input = $("chat-text");
    if (!input.value && unsentChat.length) input.value = unsentChat.shift() ?? "";
    $("chat-status").textContent = strings.chatNotStored;
  }
};
call.onmedia = (id, media) => {
  const tile = tileOf(id);
  if (!tile) return;
  badge(tile, "muted", strings.muted, media.muted);
  badge(tile, "screen", strings.sharingScreen, media.screen_sharing);
};
/** The waiting patient's device check as the admitting doctor sees it: each part working, not, or untried. */
function checkSummary(check) {
  const summary = document.createElement("span");
  summary.className = "device-check";
  if (!check) {
    summary.textContent = strings.checkNotTaken;
    summary.dataset.state = "none";
    return summary;
  }
  const parts = [["camera", strings.camera], ["microphone", strings.microphone], ["speaker", strings.speaker]];
  const mark = (value) => (value === true ? "✓" : value === false ? "✗" : "?");
  const words = parts.map(([key, label]) => `${label} ${mark(check[key])}`);
  if (check.rtt_ms !== null && check.rtt_ms !== undefined) words.push(strings.rtt.replace("{ms}", String(check.rtt_ms)));
  summary.textContent = words.join(" · ");
  summary.dataset.state = parts.every(([key]) => check[key] === true) ? "ok" : "problem";
  return summary;
}
call.onlobby = (waiting) => {
  $("lobby-panel").hidden = !grants.admit;
  const list = $("lobby-list");
  list.replaceChildren(...waiting.map((guest) => {
    const item = document.createElement("li");
    item.dataset.waiting = guest.id;
    const name = document.createElement("span");
    name.textContent = guest.name;
    const admit = document.createElement("button");
    admit.type = "button";
    admit.className = "primary";
    admit.textContent = strings.admit;
    admit.addEventListener("click", () => call.admit(guest.id));
    const deny = document.createElement("button");
    deny.type = "button";
    deny.textContent = strings.deny;
    deny.addEventListener("click", () => call.deny(guest.id));
    item.append(name, checkSummary(guest.device_check), admit, deny);
    return item;
  }));
};
const seenChat = new Set();
/** Lines sent and not yet seen back from the room, oldest first: a line is shown once the server kept it. */
const unsentChat = [];
call.onchat = (line) => {
  if (seenChat.has(line.id)) return;  // history is sent again after a reconnect
  seenChat.add(line.id);
  if (line.from === call.self?.id) {
    const index = unsentChat.indexOf(line.text);
    if (index >= 0) unsentChat.splice(index, 1);
    $("chat-status").textContent = "";
  }
  const item = document.createElement("li");
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = line.name;
  item.append(who, document.createTextNode(line.text));
  $("chat-lines").append(item);
  item.scrollIntoView({ block: "nearest" });
};

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("chat-text");
  const text = input.value.trim();
  if (text && call.sendChat(text)) {
    unsentChat.push(text);
    input.value = "";
  }
});
micButton.disabled = !localStream?.getAudioTracks().length;
cameraButton.disabled = !localStream?.getVideoTracks().length;
micButton.addEventListener("click", () => {
  const muted = micButton.getAttribute("aria-pressed") !== "true";
  call.setMicrophoneEnabled(!muted);
  micButton.setAttribute("aria-pressed", String(muted));
  micButton.textContent = muted ? strings.unmute : strings.mute;
});
cameraButton.addEventListener("click", () => {
  const off = cameraButton.getAttribute("aria-pressed") !== "true";
  call.setCameraEnabled(!off);
  cameraButton.setAttribute("aria-pressed", String(off));
  cameraButton.textContent = off ? strings.cameraOn : strings.cameraOff;
});
hangUpButton.addEventListener("click", () => call.hangUp());

/** @param {MediaStreamTrack | null} screen */
async function showSharing(screen) {
  await call.shareScreen(screen);
  shareButton.setAttribute("aria-pressed", String(Boolean(screen)));
  shareButton.textContent = screen ? strings.stopSharing : strings.shareScreen;
  $("local-video").srcObject = screen ? new MediaStream([screen]) : localStream;
}
shareButton.hidden = !navigator.mediaDevices?.getDisplayMedia;
shareButton.addEventListener("click", async () => {
  if (call.screen) return showSharing(null);
  let captured;
  try {
    captured = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (err) {
    console.warn("screen sharing refused or cancelled", err);
    return;
  }
  const [screen] = captured.getVideoTracks();
  screen.contentHint = "detail";  // images and reports: keep them sharp rather than smooth
  // The browser's own "Stop sharing" bar ends the track: go back to the camera.
  screen.addEventListener("ended", () => { if (call.screen === screen) showSharing(null); });
  await showSharing(screen);
});
recordButton.addEventListener("click", () => call.setRecording(!call.recording));
consentBox.addEventListener("change", async () => {
  // Consent is a record kept by the server (who, when, for which consultation), not a signaling message.
  const response = await fetch(config.consentUrl, {
    method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
    body: JSON.stringify({ ...(config.guest ? { guest: config.guest } : {}), given: consentBox.checked,
                           template_id: config.recordingTemplateId }),
  });
  if (!response.ok) consentBox.checked = !consentBox.checked;
});
$("invite-patient")?.addEventListener("click", async () => {
  // The link is bound to this consultation's patient; it expires when the room closes, or is revoked.
  const response = await fetch(config.invitationUrl, {
    method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin", body: "{}",
  });
  if (!response.ok) {
    $("recording-message").textContent = (await response.json()).error?.message ?? "";
    return;
  }
  const invitation = await response.json();
  $("invite-link").value = new URL(invitation.url, location.href).href;
  $("revoke-invitation").dataset.url = `/api/invitations/${invitation.id}`;
  $("revoke-invitation").disabled = false;
  $("invite-result").hidden = false;
});
$("patient-recording-consent")?.addEventListener("click", async () => {
  // The patient said yes to the doctor, having heard the text: the doctor records it, and is named on it.
  const response = await fetch(config.patientConsentUrl, {
    method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
    body: JSON.stringify({ purpose: "recording", template_id: config.recordingTemplateId }),
  });
  const body = await response.json();
  $("recording-message").textContent = response.ok ? strings.patientConsentRecorded : body.error?.message ?? "";
});
$("revoke-invitation")?.addEventListener("click", async () => {
  // The link stops working at once, and a patient in the call or the waiting room by it leaves.
  const button = $("revoke-invitation");
  const response = await fetch(button.dataset.url, { method: "DELETE", credentials: "same-origin" });
  if (response.ok) {
    button.disabled = true;
    $("invite-link").value = "";
    $("recording-message").textContent = strings.invitationRevoked;
  }
});
window.addEventListener("pagehide", () => call.hangUp());

call.start();
