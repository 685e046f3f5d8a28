// The signaling protocol's client side (see signaling/PROTOCOL.md): one WebSocket, typed messages.

export const PROTOCOL_VERSION = 1;

/**
 * @typedef {{id: string, user_id: number, name: string, role: string}} Participant
 * @typedef {{type: "joined", self: Participant, participants: Participant[], protocol: number}} Joined
 * @typedef {{type: string, [key: string]: any}} Message
 */

export class SignalingClient {
  /** @param {string} url absolute ws:// or wss:// URL of the consultation's signaling endpoint */
  constructor(url) {
    this.url = url;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** Called for every message after "joined". @type {(message: Message) => void} */
    this.onmessage = () => {};
    /** Called once when the connection ends. @type {(code: number, reason: string) => void} */
    this.onclose = () => {};
  }

  /**
   * Open the socket and join the room.
   * @returns {Promise<Joined>} resolves with the "joined" message; rejects if the server refuses.
   */
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let joined = false;
      ws.onopen = () => this.send({ type: "join", protocol: PROTOCOL_VERSION });
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          console.warn("signaling: ignoring a message that is not JSON");
          return;
        }
        if (!joined) {
          if (message.type === "joined") {
            joined = true;
            resolve(message);
          } else if (message.type === "error") {
            reject(new Error(`${message.code}: ${message.message}`));
          }
          return;
        }
        this.onmessage(message);
      };
      ws.onclose = (event) => {
        if (!joined) reject(new Error(`signaling closed before joining (${event.code} ${event.reason})`));
        this.onclose(event.code, event.reason);
      };
    });
  }

  /** @param {Message} message */
  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() {
    if (!this.ws) return;
    this.send({ type: "leave" });
    this.ws.close(1000);
  }
}

/** @param {string} path the endpoint's path on this site */
export function signalingUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
