// Relay mode: one RTCPeerConnection to the server's media relay. Our own microphone and camera go
// first; then `slots` pairs of receive-only audio/video transceivers, which the relay fills with the
// other participants and names in "layout" messages (the slot's video mid -> participant id).
// Slots are fixed for the life of the connection, so people coming and going never renegotiate.
// Each offer names itself (offer_id) and the relay's answer names it back: an answer to an earlier
// offer (of this link or one closed since) is dropped, never applied to this connection.
// Our camera goes out twice: as it is, and as a low layer (about 320x180 at 150 kbps) on a second video
// transceiver, which the relay forwards to those whose link cannot carry more. The relay says in each
// "layout" what every slot carries (high, low, or paused: audio only) and we may ask it for audio only.

/**
 * @typedef {{audio: RTCRtpTransceiver, video: RTCRtpTransceiver, stream: MediaStream, owner: string | null,
 *            videoState?: "high" | "low" | "paused"}} Slot
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

/** The low layer's height, bitrate and frame rate. */
export const LOW_LAYER = { height: 180, maxBitrate: 150_000, maxFramerate: 15 };

/**
 * How much to scale a track down for the low layer.
 * @param {MediaStreamTrack | null} track
 * @returns {number}
 */
export function lowLayerScale(track) {
  const height = track?.getSettings?.().height ?? 720;
  return Math.max(1, height / LOW_LAYER.height);
}

export class RelayLink {
  /**
   * @param {{iceServers: RTCIceServer[], iceTransportPolicy?: RTCIceTransportPolicy, localStream: MediaStream | null, slots: number, epoch: number,
   *          send: (message: object) => boolean, video?: MediaStreamTrack | null}} options
   *   epoch: the relay this link connects to (the room's relay_epoch);
   *   video: what to send as video instead of the camera (a shared screen)
   */
  constructor({ iceServers, iceTransportPolicy = "all", localStream, slots, epoch, send, video = null }) {
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: "max-bundle" });
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
    /** @type {(participantId: string, video: "high" | "low" | "paused") => void} what the relay forwards of someone's video */
    this.onvideostate = () => {};

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
    // Right after the camera: the relay takes a second sending video as its low layer.
    const camera = video ?? tracks.find((t) => t.kind === "video") ?? null;
    this.senders.low = this.pc.addTransceiver(camera ?? "video", { direction: "sendonly",
      streams: localStream ? [localStream] : [],
      sendEncodings: [{ scaleResolutionDownBy: lowLayerScale(camera), maxBitrate: LOW_LAYER.maxBitrate,
                        maxFramerate: LOW_LAYER.maxFramerate }] }).sender;
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
   * @param {Record<string, "high" | "low" | "paused">} [videoLayout] the slot's video mid -> what it carries
   */
  setLayout(layout, audioLayout = {}, videoLayout = {}) {
    for (const slot of this.slots) {
      const mid = /** @type {string} */ (slot.video.mid);
      const owner = layout[mid] ?? audioLayout[/** @type {string} */ (slot.audio.mid)] ?? null;
      if (owner !== slot.owner) {
        if (slot.owner) this.ongone(slot.owner);
        slot.owner = owner;
        slot.videoState = undefined;
        if (owner) this.onstream(owner, slot.stream);
      }
      const state = videoLayout[mid] ?? "high";
      if (owner && state !== slot.videoState) {
        slot.videoState = state;
        this.onvideostate(owner, state);
      }
    }
  }

  /** Say again what each slot carries (the page words a pause by whether we chose audio only, which changed). */
  showVideoStates() {
    for (const slot of this.slots) {
      if (slot.owner && slot.videoState) this.onvideostate(slot.owner, slot.videoState);
    }
  }

  /**
   * Receive the others' video (true; also "try again" after the relay paused it for our link) or audio only.
   * @param {boolean} video
   */
  receiveVideo(video) {
    this.send({ type: "receive", to: RELAY, video });
  }

  /** @param {MediaStreamTrack | null} track sent as our video from now on (a shared screen, the camera, nothing) */
  async setVideo(track) {
    await this.senders.video.replaceTrack(track);
    const low = this.senders.low;
    await low.replaceTrack(track);
    const parameters = low.getParameters();
    if (parameters.encodings?.length) {
      parameters.encodings[0].scaleResolutionDownBy = lowLayerScale(track);  // a screen is not the camera's size
      await low.setParameters(parameters).catch((err) => console.warn("low layer not rescaled", err));
    }
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
