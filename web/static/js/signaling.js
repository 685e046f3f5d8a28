// The signaling protocol's client side (see signaling/PROTOCOL.md): one WebSocket at a time, joined with
// a room token, reconnecting by itself with backoff and resuming its seat when the network drops.

import { CLOSE, ERRORS, FINAL_CLOSES } from "./codes.js";

// The version this code speaks, so it stays written here: the server refuses a client it does not speak.
export const PROTOCOL_VERSION = 2;
const PING_EVERY_MS = 10_000;
const BACKOFF_MS = [0.5, 1, 2, 4, 8].map((seconds) => seconds * 1000);
// Asked again at the room's opening by this browser's clock, but never sooner than this: a clock ahead of
// the server's would otherwise ask again and again in the last moments before it opens.
const NOT_OPEN_RECHECK_MS = 2000;
// Closes after which trying again cannot help: the server said no.
const FINAL = new Set(FINAL_CLOSES);

/**
 * @typedef {{muted: boolean, camera_off: boolean, screen_sharing: boolean}} MediaState
 * @typedef {{id: string, user_id: number|null, name: string, role: string, guest: boolean, media: MediaState}} Participant
 * @typedef {{type: string, [key: string]: any}} Message
 * @typedef {"connecting"|"open"|"reconnecting"|"not-open"|"closed"} LinkState
 */

/**
 * The server would not give a room token, and asking again on the usual backoff cannot help: the room is
 * not open yet (ask again in `retryIn` ms), or never will be for this page (`retryIn` null: the room has
 * closed, the invitation was withdrawn...). fetchToken throws it; `reason` is passed on to onend.
 */
export class TokenRefused extends Error {
  /**
   * @param {string} reason
   * @param {number | null} retryIn
   */
  constructor(reason, retryIn = null) {
    super(`room token refused: ${reason}`);
    this.reason = reason;
    this.retryIn = retryIn;
  }
}

export class SignalingSession {
  /**
   * @param {{url: string, fetchToken: () => Promise<string>}} options
   *   fetchToken is asked for a fresh room token before every (re)connection.
   */
  constructor({ url, fetchToken }) {
    this.url = url;
    this.fetchToken = fetchToken;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** "<participant id>.<secret>", given by the server; lets a new socket take the same seat. */
    this.resume = null;
    this.attempt = 0;
    this.stopped = false;
    this.pingTimer = null;
    /** @type {(message: Message) => void} every message from the server */
    this.onmessage = () => {};
    /** @type {(state: LinkState) => void} */
    this.onlinkstate = () => {};
    /** @type {(code: number | null, reason: string) => void} the session is over and will not reconnect;
     * code is null when it ended without a socket (a TokenRefused's reason) */
    this.onend = () => {};
  }

  start() {
    this._connect();
  }

  async _connect() {
    this.onlinkstate(this.attempt === 0 ? "connecting" : "reconnecting");
    let token;
    try {
      token = await this.fetchToken();
    } catch (err) {
      if (err instanceof TokenRefused) {
        this._refused(err);
        return;
      }
      console.warn("could not get a room token", err);
      this._retry();
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this._send({ type: "join", protocol: PROTOCOL_VERSION, token, ...(this.resume ? { resume: this.resume } : {}) });
      this.pingTimer = setInterval(() => this._send({ type: "ping" }), PING_EVERY_MS);
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn("signaling: ignoring a message that is not JSON");
        return;
      }
      if (message.type === "ping") {
        this._send({ type: "pong", id: message.id ?? null });
        return;
      }
      if (message.type === "joined" || message.type === "lobby") {
        this.resume = message.resume;
        this.attempt = 0;
        this.onlinkstate("open");
      }
      if (message.type === "error" && message.code === ERRORS.RESUME_FAILED) {
        // The seat is gone (the grace period passed): join again as someone new on this socket.
        this.resume = null;
        this.fetchToken()
          .then((fresh) => this._send({ type: "join", protocol: PROTOCOL_VERSION, token: fresh }))
          .catch((err) => (err instanceof TokenRefused ? this._refused(err) : this.dropConnection()));
      }
      this.onmessage(message);
    };
    ws.onclose = (event) => {
      clearInterval(this.pingTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      // A close we started ourselves reads as CLOSE.NORMAL (the server's reply), so a simulated drop is flagged.
      const dropped = ws.dropped === true;
      if (this.stopped || (!dropped && FINAL.has(event.code))) {
        this.onlinkstate("closed");
        this.onend(event.code, event.reason);
      } else {
        this._retry();
      }
    };
  }

  /** @param {TokenRefused} refusal */
  _refused(refusal) {
    if (this.stopped) return;
    if (refusal.retryIn !== null) {
      this.onlinkstate("not-open");
      setTimeout(() => this._connect(), Math.max(refusal.retryIn, NOT_OPEN_RECHECK_MS));
      return;
    }
    this.stopped = true;
    const ws = this.ws;
    this.ws = null;  // its close is ours: onclose has nothing to add
    ws?.close(CLOSE.NORMAL);
    this.onlinkstate("closed");
    this.onend(null, refusal.reason);
  }

  _retry() {
    if (this.stopped) return;
    this.onlinkstate("reconnecting");
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2);
    this.attempt += 1;
    setTimeout(() => this._connect(), delay);
  }

  /** @param {Message} message */
  send(message) {
    return this._send(message);
  }

  /** @param {Message} message */
  _send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /** Leave for good: the seat is given up at once. */
  close() {
    this.stopped = true;
    this._send({ type: "leave" });
    this.ws?.close(CLOSE.NORMAL);
  }

  /** For tests and diagnosis: drop the socket as a network failure would (no leave is sent). */
  dropConnection() {
    if (!this.ws) return;
    this.ws.dropped = true;
    this.ws.close(CLOSE.DROPPED, "dropped");
  }
}

/** @param {string} path the endpoint's path on this site */
export function signalingUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
