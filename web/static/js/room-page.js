// The consultation room page: draws videos, the connection state and the controls. All WebRTC and
// signaling lives in call.js; this file only sets its callbacks and reacts to buttons.

import { ConsultationCall } from "./call.js";
import { signalingUrl } from "./signaling.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const strings = JSON.parse(document.getElementById("room-strings").textContent);

const stateLabel = document.getElementById("connection-state");
const videos = document.getElementById("videos");
const waitingNote = document.getElementById("waiting-note");
const micButton = document.getElementById("toggle-mic");
const cameraButton = document.getElementById("toggle-camera");
const hangUpButton = document.getElementById("hang-up");

/** @param {string} state */
function showState(state) {
  stateLabel.dataset.state = state;
  stateLabel.textContent = strings[state] ?? state;
}

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

/** @param {string} participantId @param {string} name */
function tileFor(participantId, name) {
  let tile = document.querySelector(`[data-participant="${CSS.escape(participantId)}"]`);
  if (!tile) {
    tile = document.createElement("figure");
    tile.className = "tile remote";
    tile.dataset.participant = participantId;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    const caption = document.createElement("figcaption");
    caption.textContent = name;
    tile.append(video, caption);
    videos.append(tile);
  }
  return tile;
}

async function main() {
  const localStream = await localMedia();
  if (localStream) document.getElementById("local-video").srcObject = localStream;

  const call = new ConsultationCall({
    signalingUrl: signalingUrl(config.signalingPath),
    iceServers: config.iceServers,
    localStream,
  });
  // A handle for debugging in the console and for the end-to-end tests' getStats() checks.
  window.telemedCall = call;

  call.onstatechange = showState;
  call.onparticipants = (participants) => {
    waitingNote.hidden = participants.length > 0;
  };
  call.onremotestream = (participant, stream) => {
    const video = tileFor(participant.id, participant.name).querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {
      // Autoplay with sound was refused: play muted and let one click bring the sound back.
      video.muted = true;
      video.play();
      document.addEventListener("click", () => { video.muted = false; }, { once: true });
    });
  };
  call.onparticipantleft = (id) => {
    document.querySelector(`[data-participant="${CSS.escape(id)}"]`)?.remove();
  };

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
  hangUpButton.addEventListener("click", () => {
    call.hangUp();
    micButton.disabled = cameraButton.disabled = hangUpButton.disabled = true;
    const rejoin = document.createElement("a");
    rejoin.className = "button primary";
    rejoin.href = location.pathname;
    rejoin.textContent = strings.rejoin;
    hangUpButton.after(rejoin);
  });
  window.addEventListener("pagehide", () => call.hangUp());

  try {
    await call.start();
  } catch (err) {
    console.error(err);
    showState("failed");
  }
}

main();
