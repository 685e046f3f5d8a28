// The recording player page: one <video> per participant (rendered by the server), driven by one play
// button and one seek bar through a SyncGroup (media-sync.js), which keeps them on one clock.

import {SyncGroup} from "./media-sync.js";

const SEEK_STEP = 5; // seconds the arrow keys move

/**
 * @typedef {{duration: number, viewing: string}} PlayerConfig
 * @typedef {Record<string, string>} Strings
 */

/** @param {string} id */
function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent || "{}") : {};
}

/**
 * 65 -> "1:05", 3725 -> "1:02:05".
 * @param {number} seconds
 */
export function clock(seconds) {
  const whole = Math.max(0, Math.round(Number.isFinite(seconds) ? seconds : 0));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

function main() {
  /** @type {PlayerConfig} */
  const config = readJson("player-config");
  /** @type {Strings} */
  const strings = readJson("player-strings");
  const root = /** @type {HTMLElement} */ (document.getElementById("player"));
  const playButton = /** @type {HTMLButtonElement} */ (document.getElementById("play"));
  const seekBar = /** @type {HTMLInputElement} */ (document.getElementById("seek"));
  const position = /** @type {HTMLOutputElement} */ (document.getElementById("position"));
  const status = /** @type {HTMLElement} */ (document.getElementById("player-status"));
  const videos = /** @type {HTMLVideoElement[]} */ ([...root.querySelectorAll(".player-tile video")]);
  const group = new SyncGroup(videos);
  let dragging = false;

  const total = () => group.duration || config.duration || 0;

  /** @param {number} time */
  const showTime = (time) => {
    const text = strings.position.replace("{time}", clock(time)).replace("{duration}", clock(total()));
    position.value = `${clock(time)} / ${clock(total())}`;
    seekBar.setAttribute("aria-valuetext", text);
    if (!dragging) seekBar.value = String(time);
  };

  group.addEventListener("state", (event) => {
    const state = /** @type {CustomEvent<string>} */ (event).detail;
    root.dataset.state = state;
    const playing = state === "playing" || state === "buffering";
    playButton.textContent = playing && group.wanted ? strings.pause : strings.play;
    playButton.setAttribute("aria-pressed", String(playing && group.wanted));
    playButton.disabled = state === "loading" || state === "failed";
    seekBar.disabled = state === "loading" || state === "failed";
    if (group.duration) seekBar.max = String(group.duration);
    status.textContent = strings[state] ?? "";
  });
  group.addEventListener("time", (event) => showTime(/** @type {CustomEvent<number>} */ (event).detail));
  group.addEventListener("failure", (event) => {
    const video = /** @type {CustomEvent<HTMLVideoElement>} */ (event).detail;
    video.closest(".player-tile")?.setAttribute("data-failed", "true");
    status.textContent = strings.failed;
  });

  const toggle = () => (group.wanted ? group.pause() : group.play());
  playButton.addEventListener("click", toggle);

  seekBar.addEventListener("input", () => {
    dragging = true;
    showTime(Number(seekBar.value));
    group.seek(Number(seekBar.value));
  });
  seekBar.addEventListener("change", () => {
    dragging = false;
    group.seek(Number(seekBar.value));
  });
  seekBar.addEventListener("keydown", (event) => {
    // The bar's own arrow step is a tenth of a second, too fine to hear the difference: move 5 s instead.
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    event.preventDefault();
    group.seek(group.currentTime + (event.key === "ArrowRight" ? SEEK_STEP : -SEEK_STEP));
  });
  document.addEventListener("keydown", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    if (target.closest("button, input, a, select, textarea")) return; // they have keys of their own
    if (event.key === " " || event.key === "k") {
      event.preventDefault();
      toggle();
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      group.seek(group.currentTime + (event.key === "ArrowRight" ? SEEK_STEP : -SEEK_STEP));
    }
  });

  for (const slider of root.querySelectorAll("input[data-volume]")) {
    const input = /** @type {HTMLInputElement} */ (slider);
    const video = videos[Number(input.dataset.volume)];
    input.addEventListener("input", () => {
      if (video) video.volume = Number(input.value);
    });
  }

  window.addEventListener("pagehide", () => group.destroy());
  // For tests and the console: the one clock of this page.
  /** @type {any} */ (window).telemedPlayer = group;
}

main();
