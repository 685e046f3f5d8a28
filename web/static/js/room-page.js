// The consultation room page: waits for the room to open, draws the lobby, chat and the connection state,
// and reacts to buttons. WebRTC and signaling live in call.js and signaling.js, which this file only gives
// callbacks; the videos' layout is room-stage.js's, the countdown room-window.js's, the side panel
// room-panel.js's.

import { ConsultationCall } from "./call.js";
import { API_ERRORS, ERRORS } from "./codes.js";
import { postInPlace, tabs } from "./room-panel.js";
import { RoomStage, SELF } from "./room-stage.js";
import { bandwidth } from "./link-speed.js";
import { localize } from "./local-time.js";
import { serverClock, untilOpen } from "./room-window.js";
import { TokenRefused, signalingUrl } from "./signaling.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const strings = JSON.parse(document.getElementById("room-strings").textContent);
const $ = (id) => document.getElementById(id);

const stateLabel = $("connection-state");
const micButton = $("toggle-mic");
const cameraButton = $("toggle-camera");
const hangUpButton = $("hang-up");
const recordButton = $("toggle-recording");
const shareButton = $("share-screen");
const audioOnlyButton = $("audio-only");
const enlargeButton = $("enlarge");
const fullscreenButton = $("fullscreen");
const consentBox = $("recording-consent");
const clock = serverClock(config.window.now);
let grants = { admit: false, moderate: false, record: false, publish: false };
/** @type {string | null} who started the recording running, if one is */
let recordingBy = null;
/** @type {ConsultationCall | null} */
let call = null;
/** @type {MediaStream | null} */
let localStream = null;
/** Stops the countdown shown, when another takes its place. */
let countdown = new AbortController();
/** @type {Set<string>} who gets only our audio (call.onaudience): their tiles say so */
let takesOnlyOurAudio = new Set();

// Token refusals after which asking again cannot help, and the state the call ends in. A patient's link
// expires when the room closes, so for them an expired or closed link means the same as a closed room.
const FINAL_REFUSALS = {
  [API_ERRORS.ROOM_CLOSED]: "room-closed",
  [API_ERRORS.LINK_REVOKED]: "invitation-revoked",
  [API_ERRORS.CONSENT_REQUIRED]: "consent-withdrawn",
  [API_ERRORS.SESSION_ENDED]: "session-ended",
  ...(config.guest ? { [API_ERRORS.LINK_CLOSED]: "room-closed", [API_ERRORS.TOKEN_EXPIRED]: "room-closed",
                      [API_ERRORS.LINK_LOCKED]: "invitation-revoked" }
    : { [API_ERRORS.ACCOUNT_DISABLED]: "not-a-participant" }),
};
const ENDED = ["ended", "denied", "removed", "consent-withdrawn", "invitation-revoked", "not-a-participant",
  "session-ended", "logged-out", "room-closed"];
// The ends after which this browser must log in again, and why the login page is told it was sent there.
const LOG_IN_AGAIN = { "session-ended": "session-ended", "logged-out": "login-required" };

/** @param {string} state */
function showState(state) {
  stateLabel.dataset.state = state;
  stateLabel.textContent = strings[state] ?? state;
  $("lobby-notice").hidden = state !== "lobby";
  $("room-not-open").hidden = state !== "not-open";
  if (state === "room-closed") showClosed();
  if (LOG_IN_AGAIN[state]) showSessionEnded(state);
  if (ENDED.includes(state)) endControls(state === "ended");
}

/** The room has closed: say so, with the way back, and let go of the camera. */
function showClosed() {
  $("room-closed").hidden = false;
  $("room-not-open").hidden = true;
  leaveStage();
}

/** The session this page was opened in has ended (the password was reset, or it expired or was logged out):
 * nothing of the consultation stays on the screen but its title (not the patient, the referral, the lobby or
 * the chat), only why and the way back in, logging in again.
 * @param {"session-ended" | "logged-out"} state */
function showSessionEnded(state) {
  $("session-ended").hidden = false;
  $("session-ended-reset").hidden = state !== "session-ended";
  $("session-ended-logged-out").hidden = state !== "logged-out";
  const next = encodeURIComponent(location.pathname + location.search);
  /** @type {HTMLAnchorElement} */ ($("log-in-again")).href = `/login?reason=${LOG_IN_AGAIN[state]}&next=${next}`;
  leaveStage();
  const gone = ":scope > :not(.room-head, #session-ended), .room-head > :first-child > :not(h1)";
  for (const element of $("room").querySelectorAll(gone)) /** @type {HTMLElement} */ (element).hidden = true;
}

/** The call is over on this page: stop counting down to the room's opening, let go of the camera. */
function leaveStage() {
  countdown.abort();
  $("stage").hidden = true;
  $("chat-panel").hidden = true;
  for (const track of localStream?.getTracks() ?? []) track.stop();
}

/**
 * Count down to the room's opening (on the server's clock), showing when it opens: a patient reads that
 * on this device's clock and zone (local-time.js), a clinician on their hospital's, as the server wrote it.
 * @param {number} opensAt
 */
function countDownTo(opensAt) {
  countdown.abort();
  countdown = new AbortController();
  const shown = /** @type {HTMLTimeElement} */ ($("opens-at"));
  if (shown.hasAttribute("data-local")) localize(shown, opensAt);
  $("room-not-open").hidden = false;
  return untilOpen({ opensAt, clock, element: $("opens-in"), strings, signal: countdown.signal });
}

/** What the patient's device check found on the way here (device-check.js keeps it), or null. */
function deviceCheck() {
  try {
    return JSON.parse(sessionStorage.getItem(`device-check:${config.guest}`) ?? "null");
  } catch {
    return null;
  }
}

/** Whether the patient chose, at the device check, to start with audio only (device-check.js keeps it). */
const startAudioOnly = Boolean(config.guest) && sessionStorage.getItem(`device-check:${config.guest}:audio-only`) === "true";

/** @param {boolean} on audio only asked for (of the relay, or peer to peer of the others) and the button shows it */
function setAudioOnly(on) {
  call?.setAudioOnly(on);
  audioOnlyButton.setAttribute("aria-pressed", String(on));
  label(audioOnlyButton, on ? strings.showVideo : strings.audioOnly);
}

/** A room token for this page: clinicians through their session, guests through their link. */
async function fetchToken() {
  const response = await fetch(config.roomTokenUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(config.guest ? { guest: config.guest, device_check: deviceCheck() } : {}),
    credentials: "same-origin",
  });
  if (!response.ok) {
    const error = await response.json().then((body) => body.error ?? {}, () => ({}));
    if (error.code === API_ERRORS.ROOM_NOT_OPEN && error.opens_at) {
      // This device's clock said it was time; the server's did not. Count down again, to the server's time.
      const opensAt = Date.parse(error.opens_at);
      countDownTo(opensAt);
      throw new TokenRefused("not-open", opensAt - clock());
    }
    if (FINAL_REFUSALS[error.code]) throw new TokenRefused(FINAL_REFUSALS[error.code]);
    // A clinician no longer logged in on this browser (the session expired, or was logged out in another tab):
    // asking again cannot help, logging in can.
    if (!config.guest && response.status === 401) throw new TokenRefused("logged-out");
    throw new Error(`room token refused: ${response.status}`);
  }
  const answer = await response.json();
  applyGrants(answer.grants);
  return { token: answer.token, iceServers: answer.ice_servers, iceTransportPolicy: answer.ice_transport_policy };
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

const stage = new RoomStage({
  container: $("videos"),
  strings,
  canRemove: () => grants.moderate,
  onremove: (person) => {
    // Removing someone ends their part in the consultation: ask first.
    if (window.confirm(strings.confirmRemove.replace("{name}", person.name))) call?.remove(person.id);
  },
});
// Only where the browser lets a page go full screen (not an iPhone's Safari, say).
fullscreenButton.hidden = !document.fullscreenEnabled;

function endControls(canRejoin) {
  micButton.disabled = cameraButton.disabled = hangUpButton.disabled = shareButton.disabled = recordButton.disabled = true;
  audioOnlyButton.disabled = true;
  if (canRejoin && !$("rejoin")) {
    const rejoin = document.createElement("a");
    rejoin.id = "rejoin";
    rejoin.className = "button primary";
    rejoin.href = location.pathname;
    rejoin.textContent = strings.rejoin;
    hangUpButton.after(rejoin);
  }
}

/** The server's words for a signaling error, in the reader's language; its English only for a code we do
 * not know (a newer server's). @param {{code: string, message: string}} error */
function errorText(error) {
  return strings.errors[error.code] ?? error.message;
}

/** What to say when a request of this page's own is refused: the sentence for the API's error code, in the
 * reader's language (never the API's English message). @param {Response} response */
async function refusalText(response) {
  const code = await response.json().then((body) => body.error?.code, () => undefined);
  return strings.apiErrors[code] ?? strings.apiErrors["http-error"];
}

/**
 * Why recording cannot start, naming who has not consented as far as this page knows: those in the room
 * without consent, or else (the server refused, so someone has not) the patient, who need not be in it.
 * @param {{code: string, message: string}} error
 */
function consentMissingText(error) {
  const present = [call?.self, ...(call?.participants.values() ?? [])];
  const names = present.filter((p) => p && !p.recording_consent).map((p) => p.name);
  if (names.length) return strings.consentMissingNames.replace("{names}", names.join(strings.nameSeparator));
  return config.hasPatient ? strings.consentMissingPatient : errorText(error);
}

/** What we may do in the room (a room token's grants, or the server's `grants` message during the call), and
 * the controls that follow it. @param {typeof grants} now */
function applyGrants(now) {
  grants = now;
  shareButton.hidden = !(grants.publish && navigator.mediaDevices?.getDisplayMedia);
  showRecordButton();
  stage.allowRemoving();
  if (!grants.admit) {  // the lobby's names are for hosts only
    $("lobby-panel").hidden = true;
    $("lobby-list").replaceChildren();
  }
  const unverified = $("licence-notice");  // said when the page was drawn: true no longer once they may host
  if (unverified) unverified.hidden = grants.admit;
  // Nobody lets a host in: one waits in the lobby only while the room is full, and takes the first seat that frees.
  $("lobby-notice-guest").hidden = grants.admit;
  $("lobby-notice-full").hidden = !grants.admit;
}

/** The record button: for those who may record, and for whoever started the recording running, to stop it
 * (after an administrator's change, they may no longer start one). */
function showRecordButton() {
  recordButton.hidden = !grants.record && !(recordingBy !== null && recordingBy === call?.self?.id);
}

/** Into the room: camera and microphone, then the call. */
async function join() {
  $("stage").hidden = false;
  // The chat, unless the referral's tab is the one open.
  $("chat-panel").hidden = $("tab-chat")?.getAttribute("aria-selected") === "false";
  localStream = await localMedia();
  if (localStream) $("local-video").srcObject = localStream;
  micButton.disabled = !localStream?.getAudioTracks().length;
  cameraButton.disabled = !localStream?.getVideoTracks().length;

  call = new ConsultationCall({ signalingUrl: signalingUrl(signalingPath), fetchToken, localStream });
  // A handle for debugging in the console and for the end-to-end tests' getStats() checks.
  window.telemedCall = call;
  wire(call);
  // Asked for before anyone is met: the call tells each participant and each relay it meets (call.js).
  if (startAudioOnly) setAudioOnly(true);
  call.start();
  followTheSpeaker(call);
}

/** Who speaks, a few times a second: the large tile follows them (unless someone is pinned or sharing).
 * @param {ConsultationCall} call */
async function followTheSpeaker(call) {
  while (!ENDED.includes(call.state)) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    try {
      stage.hear(await call.audioLevels());
    } catch (err) {
      console.warn("could not read audio levels", err);  // a connection closed meanwhile: next time
    }
  }
}

/** @param {ConsultationCall} call */
function wire(call) {
  call.onstatechange = showState;
  call.onparticipants = (participants) => {
    $("waiting-note").hidden = participants.length > 0;
    for (const participant of participants) stage.setScreen(participant.id, Boolean(participant.media?.screen_sharing));
  };
  call.onremotestream = (participant, stream) => {
    stage.show(participant, stream);
    stage.badge(participant.id, "no-consent", strings.noConsent, !participant.recording_consent);
    stage.badge(participant.id, "audience", strings.getsAudioOnly, takesOnlyOurAudio.has(participant.id));
    stage.setScreen(participant.id, Boolean(participant.media?.screen_sharing));
  };
  call.onparticipantleft = (id) => stage.remove(id);
  call.onaudience = (audioOnly) => {
    const before = takesOnlyOurAudio;
    takesOnlyOurAudio = audioOnly;
    for (const id of new Set([...before, ...audioOnly])) stage.badge(id, "audience", strings.getsAudioOnly, audioOnly.has(id));
  };
  call.onvideostate = (id, video) => stage.setVideo(id, video, { chosen: call.audioOnly, retry: () => call.retryVideo() });
  call.onpeerstatus = (id, status) => {
    stage.tileOf(id)?.toggleAttribute("data-reconnecting", status === "reconnecting");
    stage.badge(id, "reconnecting", strings.peerReconnecting, status === "reconnecting");
  };
  call.onrecording = (state) => {
    $("recording-indicator").hidden = !state.on;
    recordingBy = state.on ? (state.by ?? recordingBy) : null;  // a resume's "joined" says on, not by whom
    showRecordButton();
    recordButton.setAttribute("aria-pressed", String(state.on));
    label(recordButton, state.on ? strings.stopRecording : strings.startRecording);
    const reasons = { "consent-withdrawn": strings.recordingConsentWithdrawn, "consent-missing": strings.recordingConsentMissing,
      "relay-lost": strings.recordingRelayLost, left: strings.recordingLeft, stopped: strings.recordingStopped };
    $("recording-message").textContent = state.on ? "" : (reasons[state.reason] ?? "");
  };
  call.onconsent = (id, given) => {
    if (id === call.self?.id) consentBox.checked = given;
    stage.badge(id, "no-consent", strings.noConsent, !given);
  };
  call.onerror = (error) => {
    if (error.code === ERRORS.RESUME_FAILED) return;  // signaling.js joins again by itself
    if (error.code === ERRORS.CHAT_NOT_STORED) {
      // Nobody was shown the line: give it back to its writer rather than lose it.
      const input = $("chat-text");
      if (!input.value && unsentChat.length) input.value = unsentChat.shift() ?? "";
      $("chat-status").textContent = errorText(error);
    } else if (error.code === ERRORS.CONSENT_MISSING) {
      $("recording-message").textContent = consentMissingText(error);
    } else if (error.code === ERRORS.NOT_ALLOWED) {
      $("recording-message").textContent = errorText(error);
    } else {
      $("call-message").textContent = errorText(error);
    }
  };
  call.onmedia = (id, media) => {
    stage.badge(id, "muted", strings.muted, media.muted);
    stage.badge(id, "screen", strings.sharingScreen, media.screen_sharing);
    stage.setScreen(id, media.screen_sharing);
  };
  call.ongrants = (now) => {
    const hosted = grants.admit;
    applyGrants(now);
    if (hosted !== grants.admit) $("call-message").textContent = grants.admit ? strings.nowHost : strings.noLongerHost;
  };
  call.onlobby = (waiting) => {
    $("lobby-panel").hidden = !grants.admit || waiting.length === 0;
    $("lobby-list").replaceChildren(...waiting.map((guest) => {
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
      item.append(name, checkSummary(guest.device_check));
      if (guest.seat_kept) {  // they held a seat and joined again (a reload): it is kept for them
        const kept = document.createElement("span");
        kept.className = "seat-kept";
        kept.textContent = strings.seatKept;
        item.append(kept);
      }
      item.append(admit, deny);
      return item;
    }));
  };
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
    // Scroll the chat, not the page: on a phone the chat is below the video, out of sight.
    const lines = $("chat-lines");
    lines.scrollTop = lines.scrollHeight;
  };
}

/** A control's visible words (beside its icon), which are also its accessible name. */
function label(button, text) {
  button.querySelector("span").textContent = text;
}

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
  const words = parts.map(([key, name]) => `${name} ${mark(check[key])}`);
  if (check.rtt_ms !== null && check.rtt_ms !== undefined) words.push(strings.rtt.replace("{ms}", String(check.rtt_ms)));
  if (Number.isInteger(check.down_kbps) && Number.isInteger(check.up_kbps)) {
    words.push(bandwidth(check.down_kbps, check.up_kbps, strings));
  }
  summary.textContent = words.join(" · ");
  summary.dataset.state = parts.every(([key]) => check[key] === true) ? "ok" : "problem";
  return summary;
}
const seenChat = new Set();
/** Lines sent and not yet seen back from the room, oldest first: a line is shown once the server kept it. */
const unsentChat = [];

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("chat-text");
  const text = input.value.trim();
  if (text && call?.sendChat(text)) {
    unsentChat.push(text);
    input.value = "";
  }
});
micButton.addEventListener("click", () => {
  const muted = micButton.getAttribute("aria-pressed") !== "true";
  call?.setMicrophoneEnabled(!muted);
  micButton.setAttribute("aria-pressed", String(muted));
  label(micButton, muted ? strings.unmute : strings.mute);
});
cameraButton.addEventListener("click", () => {
  const off = cameraButton.getAttribute("aria-pressed") !== "true";
  call?.setCameraEnabled(!off);
  cameraButton.setAttribute("aria-pressed", String(off));
  label(cameraButton, off ? strings.cameraOn : strings.cameraOff);
});
hangUpButton.addEventListener("click", () => call?.hangUp());

/** @param {MediaStreamTrack | null} screen */
async function showSharing(screen) {
  await call?.shareScreen(screen);
  shareButton.setAttribute("aria-pressed", String(Boolean(screen)));
  label(shareButton, screen ? strings.stopSharing : strings.shareScreen);
  $("local-video").srcObject = screen ? new MediaStream([screen]) : localStream;
  stage.setScreen(SELF, Boolean(screen));
}
shareButton.addEventListener("click", async () => {
  if (call?.screen) return showSharing(null);
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
  screen.addEventListener("ended", () => { if (call?.screen === screen) showSharing(null); });
  await showSharing(screen);
});
recordButton.addEventListener("click", () => call?.setRecording(!call.recording));
audioOnlyButton.addEventListener("click", () => setAudioOnly(audioOnlyButton.getAttribute("aria-pressed") !== "true"));
enlargeButton.addEventListener("click", () => {
  // The videos across the whole window, the panel below them.
  const on = enlargeButton.getAttribute("aria-pressed") !== "true";
  enlargeButton.setAttribute("aria-pressed", String(on));
  $("room").toggleAttribute("data-enlarged", on);
});
fullscreenButton.addEventListener("click", () => stage.toggleFullscreen().catch((err) => console.warn("full screen refused", err)));
document.addEventListener("fullscreenchange", () => {
  label(fullscreenButton, document.fullscreenElement ? strings.exitFullscreen : strings.fullscreen);
});
consentBox.addEventListener("change", async () => {
  // Consent is a record kept by the server (who, when, for which consultation), not a signaling message.
  const response = await fetch(config.consentUrl, {
    method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
    body: JSON.stringify({ ...(config.guest ? { guest: config.guest } : {}), given: consentBox.checked,
                           template_id: config.recordingTemplateId }),
  });
  if (!response.ok) {
    consentBox.checked = !consentBox.checked;
    $("recording-message").textContent = await refusalText(response);
  }
});
$("invite-patient")?.addEventListener("click", async () => {
  // The link is bound to this consultation's patient; it expires when the room closes, or is revoked.
  const response = await fetch(config.invitationUrl, {
    method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin", body: "{}",
  });
  if (!response.ok) {
    $("recording-message").textContent = await refusalText(response);
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
  $("recording-message").textContent = response.ok ? strings.patientConsentRecorded : await refusalText(response);
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
window.addEventListener("pagehide", () => call?.hangUp());

// The side panel: chat and, for clinicians, the referral the consultation was booked for.
const tablist = document.querySelector('[role="tablist"]');
const selectPanel = tablist ? tabs(tablist) : null;
if (selectPanel && location.hash === "#referral-panel") selectPanel("tab-referral");
const referralPanel = $("referral-panel");
if (referralPanel) {
  postInPlace(referralPanel, {
    onreplaced: (panel, ok) => {
      if (ok) $("call-message").textContent = strings.reportSigned;
      panel.querySelector('[role="alert"], h3')?.scrollIntoView({ block: "nearest" });
    },
  });
}

// The patient's consent to sharing, recorded or withdrawn by their doctor, without leaving the call.
const sharingCard = $("sharing-consent");
if (sharingCard) {
  postInPlace(sharingCard, {
    onreplaced: (card) => card.querySelector('[role="alert"]')?.scrollIntoView({ block: "nearest" }),
  });
}

if (config.window.state === "closed") {
  showState("room-closed");
} else {
  if (config.window.state === "not-open") {
    showState("not-open");
    await countDownTo(Date.parse(config.window.opensAt));
    $("room-not-open").hidden = true;
  }
  join();
}
