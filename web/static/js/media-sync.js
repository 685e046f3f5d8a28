// Several media elements played as one: one clock, one play and pause, one seek.
//
// Each participant of a recording is its own file in its own <video>, all on the recording's clock (the
// server keeps every packet's timestamp). The element that lasts longest leads; the others follow its
// currentTime, and one that drifts more than DRIFT_LIMIT away is moved back to it, a little ahead of it
// by as long as its seeks have been taking. The group plays only while every element can: when one runs
// out of data (it fires "waiting"), the others pause and wait for it, so nobody runs ahead.

/** How far (seconds) a follower may be from the leader before it is moved back to it. */
export const DRIFT_LIMIT = 0.1;
/** How often (ms) followers are checked against the leader while playing. */
export const CHECK_EVERY_MS = 200;
const HAVE_FUTURE_DATA = 3;
const END_SLACK = 0.05; // an element this close to its end has nothing more to play

/**
 * @typedef {{currentTime: number, duration: number, seeking: boolean}} Position
 * @typedef {{index: number, time: number}} Correction
 * @typedef {"loading"|"ready"|"buffering"|"playing"|"paused"|"ended"|"failed"} GroupState
 */

/**
 * Which followers to move, and where to: those more than `limit` from the leader's time, unless they are
 * already seeking or the leader's time is past their end (they have finished). Pure, so it can be tested
 * without media.
 * @param {number} leaderTime
 * @param {Position[]} followers
 * @param {number} [lead] seconds to aim ahead of the leader, for the time a seek takes while playing
 * @param {number} [limit]
 * @returns {Correction[]}
 */
export function corrections(leaderTime, followers, lead = 0, limit = DRIFT_LIMIT) {
  /** @type {Correction[]} */
  const moves = [];
  followers.forEach((f, index) => {
    if (f.seeking || !(f.duration > 0)) return;
    if (leaderTime >= f.duration - END_SLACK && f.currentTime >= f.duration - END_SLACK) return;
    if (Math.abs(f.currentTime - leaderTime) > limit) {
      moves.push({index, time: Math.min(leaderTime + lead, f.duration)});
    }
  });
  return moves;
}

/**
 * A group of media elements under one clock. Dispatches "state" (detail: the GroupState), "time" (detail:
 * the group's current time in seconds), and "failure" (detail: an element that could not play and is left
 * out from then on, so the others still play).
 */
export class SyncGroup extends EventTarget {
  /** @param {HTMLMediaElement[]} elements */
  constructor(elements) {
    super();
    /** @type {HTMLMediaElement[]} */
    this.elements = elements;
    /** @type {Set<HTMLMediaElement>} elements that failed: left out so the others still play */
    this.failed = new Set();
    /** @type {Set<HTMLMediaElement>} followers seeking to catch up (they do not hold the group) */
    this.catchingUp = new Set();
    /** @type {boolean} whether the viewer wants it playing */
    this.wanted = false;
    /** @type {GroupState} */
    this.state = "loading";
    this.seekLead = 0; // seconds: how long a follower's catch-up seek has been taking, on average
    /** @type {Map<HTMLMediaElement, number>} when each catch-up seek started (performance.now()) */
    this.seekStarted = new Map();
    this.corrected = 0; // catch-up seeks so far (for tests and the curious)
    this.timer = 0;
    this.abort = new AbortController();
    const signal = this.abort.signal;
    for (const element of elements) {
      for (const type of ["loadedmetadata", "canplay", "canplaythrough", "waiting", "playing", "pause",
        "seeked", "ended", "stalled"]) {
        element.addEventListener(type, () => this.update(), {signal});
      }
      element.addEventListener("seeked", () => this.caughtUp(element), {signal});
      element.addEventListener("error", () => {
        this.failed.add(element);
        this.dispatchEvent(new CustomEvent("failure", {detail: element}));
        this.update();
      }, {signal});
      element.addEventListener("timeupdate", () => {
        if (element === this.leader) this.emitTime();
      }, {signal});
    }
    this.update();
  }

  /** The elements still playable. */
  get live() {
    return this.elements.filter((e) => !this.failed.has(e));
  }

  /** The element whose clock the others follow: the longest, once every duration is known. */
  get leader() {
    let best = null;
    for (const element of this.live) {
      if (!(element.duration > 0)) continue;
      if (best === null || element.duration > best.duration) best = element;
    }
    return best;
  }

  /** The group's length in seconds (the leader's), or 0 before it is known. */
  get duration() {
    return this.leader?.duration ?? 0;
  }

  /** The group's time: the leader's. */
  get currentTime() {
    return this.leader?.currentTime ?? 0;
  }

  /** Every element knows its length. */
  get hasMetadata() {
    return this.live.length > 0 && this.live.every((e) => e.duration > 0);
  }

  /**
   * Whether an element can go on playing from where it is: it has data ahead, or it is at its end.
   * @param {HTMLMediaElement} element
   */
  canPlay(element) {
    if (element.ended || (element.duration > 0 && element.currentTime >= element.duration - END_SLACK)) return true;
    return element.readyState >= HAVE_FUTURE_DATA && !element.seeking;
  }

  /** Every element that holds the group can play. */
  get allReady() {
    return this.hasMetadata && this.live.every((e) => this.catchingUp.has(e) || this.canPlay(e));
  }

  /** Play every element from the group's time (once all are ready). */
  play() {
    const leader = this.leader;
    if (leader && leader.ended) this.seek(0);
    this.wanted = true;
    this.update();
  }

  pause() {
    this.wanted = false;
    this.update();
  }

  /** @param {number} time seconds from the recording's start */
  seek(time) {
    const target = Math.max(0, Math.min(time, this.duration || time));
    this.catchingUp.clear();
    for (const element of this.live) {
      if (!element.paused) element.pause();
      element.currentTime = element.duration > 0 ? Math.min(target, element.duration) : target;
    }
    this.emitTime(target);
    this.update();
  }

  /** Bring every element in line with what the viewer wants and what each can do. */
  update() {
    if (this.abort.signal.aborted) return;
    if (this.live.length === 0) {
      this.stopChecking();
      this.setState("failed");
      return;
    }
    if (!this.hasMetadata || (!this.wanted && this.state === "loading" && !this.allReady)) return;
    const leader = this.leader;
    if (!this.wanted) {
      for (const element of this.live) if (!element.paused) element.pause();
      this.stopChecking();
      const fresh = this.state === "loading" || this.state === "ready"; // never played yet
      this.setState(leader?.ended ? "ended" : fresh ? "ready" : "paused");
      return;
    }
    if (leader?.ended) {
      this.wanted = false;
      for (const element of this.live) if (!element.paused) element.pause();
      this.stopChecking();
      this.setState("ended");
      return;
    }
    if (!this.allReady) {
      // Someone ran out of data or is seeking: hold everyone where they are until all can play.
      for (const element of this.live) if (!element.paused && !this.catchingUp.has(element)) element.pause();
      this.setState("buffering");
      return;
    }
    if (this.state !== "playing") {
      // Starting (or resuming after a hold): line everyone up with the leader before they run.
      const time = leader?.currentTime ?? 0;
      for (const element of this.live) {
        if (element !== leader && Math.abs(element.currentTime - time) > DRIFT_LIMIT / 2
            && time < element.duration - END_SLACK) {
          element.currentTime = time;
        }
      }
      if (!this.allReady) return; // those seeks make them not ready: start when they are
    }
    for (const element of this.live) {
      const finished = element.ended || element.currentTime >= element.duration - END_SLACK;
      if (element.paused && !finished) {
        element.play().catch((error) => {
          if (error.name === "NotAllowedError") { // no gesture yet: wait for the viewer's press
            this.wanted = false;
            this.update();
          }
        });
      }
    }
    this.setState("playing");
    this.startChecking();
  }

  /** While playing: move followers that drifted back to the leader. */
  check() {
    const leader = this.leader;
    if (!leader || this.state !== "playing") return;
    const followers = this.live.filter((e) => e !== leader);
    const leaderTime = leader.currentTime;
    for (const move of corrections(leaderTime, followers, this.seekLead)) {
      const element = followers[move.index];
      this.catchingUp.add(element);
      this.seekStarted.set(element, performance.now());
      this.corrected += 1;
      element.currentTime = move.time;
    }
    this.emitTime();
  }

  /** @param {HTMLMediaElement} element */
  caughtUp(element) {
    const started = this.seekStarted.get(element);
    if (started !== undefined) {
      this.seekStarted.delete(element);
      const took = Math.min((performance.now() - started) / 1000, 0.5);
      this.seekLead = this.seekLead === 0 ? took : 0.7 * this.seekLead + 0.3 * took;
    }
    this.catchingUp.delete(element);
    if (this.state === "playing" && element.paused && this.wanted) element.play().catch(() => {});
  }

  startChecking() {
    if (!this.timer) this.timer = window.setInterval(() => this.check(), CHECK_EVERY_MS);
  }

  stopChecking() {
    if (this.timer) window.clearInterval(this.timer);
    this.timer = 0;
  }

  /** @param {GroupState} state */
  setState(state) {
    if (this.live.length === 0) state = "failed";
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", {detail: state}));
  }

  /** @param {number} [time] */
  emitTime(time) {
    this.dispatchEvent(new CustomEvent("time", {detail: time ?? this.currentTime}));
  }

  /** Stop listening and checking (the page is going away). */
  destroy() {
    this.stopChecking();
    this.abort.abort();
  }
}
