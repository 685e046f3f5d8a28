// Relay mode: one RTCPeerConnection to the server's media relay. Our own microphone and camera go
// first; then `slots` pairs of receive-only audio/video transceivers, which the relay fills with the
// other participants and names in "layout" messages (the slot's video mid -> participant id).
// Slots are fixed for the life of the connection, so people coming and going never renegotiate.
// Each offer names itself (offer_id) and the relay's answer names it back: an answer to an earlier
// offer (of this link or one closed since) is dropped, never applied to this connection.

/**
 * @typedef {{audio: RTCRtpTransceiver, video: RTCRtpTransceiver, stream: MediaStream, owner: string | null}} Slot
 */

export const RELAY = "relay";

/**
 * How loud each received audio stream is now (0 to 1), by its mid: the level the browser measures on the
 * audio it decodes (inbound-rtp audioLevel), which needs nothing of the sender or the relay.
 * @param {RTCStatsReport} report
 * @returns {Map<string, number>}
 */
export function loudness(report) {
  const levels = new Map();
  report.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio" && r.mid !== undefined) levels.set(r.mid, r.audioLevel ?? 0);
  });
  return levels;
}

/** Offers made by this page, so that no two links' offers share an id. */
let offersMade = 0;

export class RelayLink {
  /**
   * @param {{iceServers: RTCIceServer[], localStream: MediaStream | null, slots: number, epoch: number,
   *          send: (message: object) => boolean, video?: MediaStreamTrack | null}} options
   *   epoch: the relay this link connects to (the room's relay_epoch);
   *   video: what to send as video instead of the camera (a shared screen)
   */
  constructor({ iceServers, localStream, slots, epoch, send, video = null }) {
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.send = send;
    this.epoch = epoch;
    /** @type {string | null} the offer whose answer this link waits for */
    this.offerId = null;
    /** @type {Slot[]} */
    this.slots = [];
    /** @type {(participantId: string, stream: MediaStream) => void} */
    this.onstream = () => {};
    /** @type {(participantId: string) => void} */
    this.ongone = () => {};
    /** @type {() => void} */
    this.onstatechange = () => {};

    const tracks = localStream?.getTracks() ?? [];
    /** @type {Record<string, RTCRtpSender>} what we send of each kind */
    this.senders = {};
    for (const kind of ["audio", "video"]) {
      const track = (kind === "video" ? video : null) ?? tracks.find((t) => t.kind === kind);
      // Always one sending transceiver per kind, even with nothing to send yet, so a screen shared
      // later (by someone without a camera, too) is a replaceTrack, never a new negotiation.
      const transceiver = this.pc.addTransceiver(track ?? kind, { direction: "sendonly",
        streams: localStream ? [localStream] : [] });
      this.senders[kind] = transceiver.sender;
    }
    for (let i = 0; i < slots; i++) {
      const stream = new MediaStream();
      const audio = this.pc.addTransceiver("audio", { direction: "recvonly" });
      const video = this.pc.addTransceiver("video", { direction: "recvonly" });
      stream.addTrack(audio.receiver.track);
      stream.addTrack(video.receiver.track);
      this.slots.push({ audio, video, stream, owner: null });
    }
    this.pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.send({ type: "candidate", to: RELAY, candidate: candidate.toJSON() });
    };
    this.pc.onconnectionstatechange = () => this.onstatechange();
  }

  async offer() {
    await this.pc.setLocalDescription();
    const description = /** @type {RTCSessionDescription} */ (this.pc.localDescription);
    offersMade += 1;
    this.offerId = `${this.epoch}.${offersMade}`;
    this.send({ type: "offer", to: RELAY, sdp: description.sdp, offer_id: this.offerId });
  }

  /**
   * Apply the relay's answer if it answers our current offer.
   * @param {string} sdp
   * @param {string | undefined} offerId the offer it answers
   * @returns {Promise<boolean>} whether it was ours
   */
  async answer(sdp, offerId) {
    if (offerId !== this.offerId || this.pc.signalingState !== "have-local-offer") return false;
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    return true;
  }

  /**
   * @param {Record<string, string>} layout the slot's video mid -> participant id
   * @param {Record<string, string>} [audioLayout] the slot's audio mid -> participant id
   */
  setLayout(layout, audioLayout = {}) {
    for (const slot of this.slots) {
      const owner = layout[/** @type {string} */ (slot.video.mid)]
        ?? audioLayout[/** @type {string} */ (slot.audio.mid)] ?? null;
      if (owner === slot.owner) continue;
      if (slot.owner) this.ongone(slot.owner);
      slot.owner = owner;
      if (owner) this.onstream(owner, slot.stream);
    }
  }

  /** @param {MediaStreamTrack | null} track sent as our video from now on (a shared screen, the camera, nothing) */
  async setVideo(track) {
    await this.senders.video.replaceTrack(track);
  }

  /** @returns {Promise<Map<string, number>>} each slot's owner -> how loud they are now (see loudness) */
  async audioLevels() {
    const byMid = loudness(await this.pc.getStats());
    const levels = new Map();
    for (const slot of this.slots) {
      if (slot.owner) levels.set(slot.owner, byMid.get(/** @type {string} */ (slot.audio.mid)) ?? 0);
    }
    return levels;
  }

  get connectionState() {
    return this.pc.connectionState;
  }

  close() {
    this.pc.close();
  }
}
