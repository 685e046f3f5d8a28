// The room's videos, laid out as in any video product: one large tile (the participant pinned, else a
// shared screen, else whoever speaks), the other participants in a strip, and the self-view small in a
// corner of the large one (in the strip when the large one is a screen, so as not to hide any of it). Only the page's DOM: the call (call.js) knows nothing of it.
//
// Tiles never move in the document (a <video> taken out of it stops playing); each gets a data-role
// ("main", "strip" or "pip") and app.css places it.

/**
 * @typedef {{id: string, name: string}} Person
 * @typedef {{pin: string, remove: string, confirmRemove: string, exitFullscreen: string}} StageStrings
 */

/** The self-view's key among the tiles: remote participants are keyed by their participant id. */
export const SELF = "self";
// A (smoothed) level above this is someone speaking (0..1; speech is well above it, a quiet room below).
const SPEAKING = 0.02;
// How much of the last smoothed level each new reading keeps: speech comes in bursts, a voice does not.
const SMOOTHING = 0.6;
// The loudest voice takes the large tile only after this long, so a cough does not swap the layout.
const SWITCH_AFTER_MS = 1200;

export class RoomStage {
  /**
   * @param {{container: HTMLElement, strings: StageStrings, canRemove: () => boolean,
   *          onremove: (person: Person) => void}} options
   */
  constructor({ container, strings, canRemove, onremove }) {
    this.container = container;
    this.strings = strings;
    this.canRemove = canRemove;
    this.onremove = onremove;
    /** @type {string | null} the tile the user chose to see large */
    this.pinned = null;
    /** @type {string | null} who spoke last */
    this.speaker = null;
    /** @type {{id: string, since: number} | null} who is louder than the speaker, and since when */
    this.challenger = null;
    /** @type {Map<string, number>} each remote participant's smoothed audio level */
    this.loudness = new Map();
    const local = this.tileOf(SELF);
    if (local) this._wire(local, SELF);
    this.layout();
  }

  /** @param {string} id @returns {HTMLElement | null} */
  tileOf(id) {
    return this.container.querySelector(`[data-participant="${CSS.escape(id)}"]`);
  }

  /** @returns {HTMLElement} the large tile */
  get main() {
    return /** @type {HTMLElement} */ (this.tileOf(this._mainId()) ?? this.tileOf(SELF));
  }

  /**
   * A remote participant's tile, made on first sight.
   * @param {Person} person
   * @returns {HTMLElement}
   */
  tile(person) {
    let tile = this.tileOf(person.id);
    if (tile) return tile;
    tile = document.createElement("figure");
    tile.className = "tile remote";
    tile.dataset.participant = person.id;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    const caption = document.createElement("figcaption");
    caption.textContent = person.name;
    const badges = document.createElement("div");
    badges.className = "badges";
    const pin = document.createElement("button");
    pin.type = "button";
    pin.className = "pin";
    pin.setAttribute("aria-pressed", "false");
    pin.setAttribute("aria-label", this.strings.pin.replace("{name}", person.name));
    pin.append(icon("i-pin"));
    tile.append(video, caption, badges, pin);
    this._removeButton(tile, person);
    this._wire(tile, person.id);
    this.container.append(tile);
    this.layout();
    return tile;
  }

  /** Each tile has its Remove button while we may remove participants (``canRemove``), and only then: call
   * after what we may do changed. */
  allowRemoving() {
    for (const tile of this.container.querySelectorAll("figure.tile.remote")) {
      const caption = tile.querySelector("figcaption");
      this._removeButton(/** @type {HTMLElement} */ (tile),
        { id: /** @type {HTMLElement} */ (tile).dataset.participant ?? "", name: caption?.textContent ?? "" });
    }
  }

  /** @param {HTMLElement} tile @param {Person} person */
  _removeButton(tile, person) {
    const button = tile.querySelector("button.remove");
    if (!this.canRemove()) {
      button?.remove();
      return;
    }
    if (!button) tile.append(tileButton("remove", this.strings.remove, () => this.onremove(person)));
  }

  /**
   * Show a participant's stream; if the browser will not play it with sound yet, play it muted until the
   * next click anywhere (autoplay rules).
   * @param {Person} person
   * @param {MediaStream} stream
   */
  show(person, stream) {
    const video = /** @type {HTMLVideoElement} */ (this.tile(person).querySelector("video"));
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {
      video.muted = true;
      video.play();
      document.addEventListener("click", () => { video.muted = false; }, { once: true });
    });
  }

  /** @param {string} id */
  remove(id) {
    this.tileOf(id)?.remove();
    this.loudness.delete(id);
    if (this.pinned === id) this.pinned = null;
    if (this.speaker === id) this.speaker = null;
    this.layout();
  }

  /**
   * Mark a tile as showing a screen (drawn whole, never cropped, never mirrored) or a camera.
   * @param {string} id @param {boolean} on
   */
  setScreen(id, on) {
    const tile = this.tileOf(id);
    if (!tile || tile.hasAttribute("data-screen") === on) return;
    tile.toggleAttribute("data-screen", on);
    this.layout();
  }

  /**
   * A small label on a tile (muted, sharing screen, no recording consent...).
   * @param {string} id @param {string} key @param {string} text @param {boolean} on
   */
  badge(id, key, text, on) {
    const tile = this.tileOf(id);
    if (!tile) return;
    let element = tile.querySelector(`[data-badge="${key}"]`);
    if (on && !element) {
      element = document.createElement("span");
      element.className = "badge";
      element.dataset.badge = key;
      element.textContent = text;
      tile.querySelector(".badges")?.append(element);
    } else if (!on && element) {
      element.remove();
    }
  }

  /**
   * What comes to us of someone's video: "high", "low" (the relay's low layer: a "lower quality" badge) or
   * "paused" (audio only: a note on the tile saying why, and, if our link paused it, a button to try video
   * again). Told the same again, the tile stays as it is (its note is not announced twice).
   * @param {string} id @param {"high"|"low"|"paused"} video @param {{chosen: boolean, retry: () => void}} options
   *   chosen: we asked for audio only; retry: ask the relay to try video again
   */
  setVideo(id, video, { chosen, retry }) {
    const tile = this.tileOf(id);
    if (!tile) return;
    const shown = `${video}${video === "paused" && chosen ? " chosen" : ""}`;
    if (tile.dataset.videoShown === shown) return;
    tile.dataset.videoShown = shown;
    tile.dataset.video = video;
    this.badge(id, "low", this.strings.videoLow, video === "low");
    tile.querySelector(".video-note")?.remove();
    if (video !== "paused") return;
    const note = document.createElement("div");
    note.className = "video-note";
    note.setAttribute("role", "status");
    const text = document.createElement("p");
    text.textContent = chosen ? this.strings.videoPausedChosen : this.strings.videoPausedWeak;
    note.append(text);
    if (!chosen) {
      const again = document.createElement("button");
      again.type = "button";
      again.textContent = this.strings.tryVideo;
      again.addEventListener("click", (event) => {
        event.stopPropagation();
        retry();
      });
      note.append(again);
    }
    tile.append(note);
  }

  /** Pin a tile large, or unpin it if it is the pinned one. @param {string} id */
  togglePin(id) {
    this.pinned = this.pinned === id ? null : id;
    this.layout();
  }

  /**
   * Follow the voices: the loudest remote participant becomes the speaker once louder than the present one
   * for a moment. Not while a tile is full screen: the user is looking at it.
   * @param {Map<string, number>} levels participant id -> level (0..1)
   * @param {number} [now]
   */
  hear(levels, now = performance.now()) {
    for (const [id, level] of levels) {
      this.loudness.set(id, SMOOTHING * (this.loudness.get(id) ?? 0) + (1 - SMOOTHING) * level);
    }
    if (document.fullscreenElement) return;
    let loudest = null;
    let top = SPEAKING;
    for (const [id, level] of this.loudness) {
      if (level > top && this.tileOf(id)) {
        loudest = id;
        top = level;
      }
    }
    if (loudest === null || loudest === this.speaker) {
      this.challenger = null;
      return;
    }
    if (this.challenger?.id !== loudest) {
      this.challenger = { id: loudest, since: now };
      return;
    }
    if (now - this.challenger.since >= SWITCH_AFTER_MS) {
      this.speaker = loudest;
      this.challenger = null;
      this.layout();
    }
  }

  /** The large tile in full screen (the Fullscreen API), or out of it again. */
  async toggleFullscreen() {
    if (document.fullscreenElement) {
      await document.exitFullscreen();
      return;
    }
    await this.main.requestFullscreen({ navigationUI: "hide" });
  }

  /** @returns {string} */
  _mainId() {
    const remotes = [...this.container.querySelectorAll(".tile.remote")].map((t) => /** @type {HTMLElement} */ (t));
    const ids = remotes.map((t) => /** @type {string} */ (t.dataset.participant));
    if (this.pinned && this.tileOf(this.pinned)) return this.pinned;
    const sharing = remotes.find((t) => t.hasAttribute("data-screen"));
    if (sharing) return /** @type {string} */ (sharing.dataset.participant);
    if (this.speaker && ids.includes(this.speaker)) return this.speaker;
    return ids[0] ?? SELF;
  }

  /** Give every tile its role. */
  layout() {
    const main = this._mainId();
    // Over a shared screen the self-view would hide part of it: it joins the strip instead.
    const overScreen = this.tileOf(main)?.hasAttribute("data-screen") ?? false;
    let strip = 0;
    for (const element of this.container.querySelectorAll(".tile")) {
      const tile = /** @type {HTMLElement} */ (element);
      const id = tile.dataset.participant;
      const role = id === main ? "main" : id === SELF && !overScreen ? "pip" : "strip";
      if (role === "strip") strip += 1;
      tile.dataset.role = role;
      tile.querySelector(".pin")?.setAttribute("aria-pressed", String(id === this.pinned));
    }
    this.container.dataset.strip = String(strip);
    // At least four columns, so that one or two others do not stretch across the whole strip.
    this.container.style.setProperty("--strip-columns", String(Math.max(strip, 4)));
  }

  /** @param {HTMLElement} tile @param {string} id */
  _wire(tile, id) {
    tile.append(tileButton("exit-fullscreen", this.strings.exitFullscreen, () => document.exitFullscreen()));
    // The pin button is the way in for keyboards and screen readers; a click anywhere on the picture
    // does the same for a mouse or a finger.
    tile.addEventListener("click", (event) => {
      if (document.fullscreenElement) return;
      const target = /** @type {Element} */ (event.target);
      if (target.closest("button") && !target.closest(".pin")) return;
      this.togglePin(id);
    });
  }
}

/** @param {string} name a symbol of the page's icon sprite */
function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#${name}`);
  svg.append(use);
  return svg;
}

/**
 * A button on a tile that does its own thing, not what a click on the tile does (pin it).
 * @param {string} className @param {string} text @param {() => void} onclick
 */
function tileButton(className, text, onclick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = text;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    onclick();
  });
  return button;
}
