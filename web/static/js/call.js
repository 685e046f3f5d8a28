// A consultation call: one RTCPeerConnection per remote participant, negotiated through signaling.
// Negotiation follows the "perfect negotiation" pattern, so offers that cross on the wire resolve
// themselves: the participant with the larger id is polite and rolls back its own offer.

import { SignalingClient } from "./signaling.js";

/**
 * @typedef {import("./signaling.js").Participant} Participant
 * @typedef {"idle"|"connecting"|"waiting"|"connected"|"reconnecting"|"failed"|"ended"} CallState
 * @typedef {{pc: RTCPeerConnection, participant: Participant, polite: boolean, makingOffer: boolean,
 *            ignoreOffer: boolean, pendingCandidates: RTCIceCandidateInit[], stream: MediaStream}} Peer
 */

export class ConsultationCall {
  /**
   * @param {{signalingUrl: string, iceServers: RTCIceServer[], localStream: MediaStream | null}} options
   */
  constructor({ signalingUrl, iceServers, localStream }) {
    this.signaling = new SignalingClient(signalingUrl);
    this.iceServers = iceServers;
    this.localStream = localStream;
    /** @type {string | null} */
    this.selfId = null;
    /** @type {Map<string, Participant>} */
    this.participants = new Map();
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    /** @type {CallState} */
    this.state = "idle";
    this.signalingOpen = false;

    /** @type {(state: CallState) => void} */
    this.onstatechange = () => {};
    /** @type {(participant: Participant, stream: MediaStream) => void} */
    this.onremotestream = () => {};
    /** @type {(participantId: string) => void} */
    this.onparticipantleft = () => {};
    /** @type {(participants: Participant[]) => void} */
    this.onparticipants = () => {};
  }

  async start() {
    this._setState("connecting");
    this.signaling.onmessage = (message) => this._onMessage(message).catch((err) => console.error(err));
    this.signaling.onclose = () => {
      this.signalingOpen = false;
      this._updateState();
    };
    const joined = await this.signaling.connect();
    this.signalingOpen = true;
    this.selfId = joined.self.id;
    // The newcomer calls everyone already present; they answer.
    for (const participant of joined.participants) {
      this.participants.set(participant.id, participant);
      this._createPeer(participant, { initiate: true });
    }
    this._announceParticipants();
    this._updateState();
  }

  /** @param {boolean} enabled */
  setMicrophoneEnabled(enabled) {
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = enabled;
  }

  /** @param {boolean} enabled */
  setCameraEnabled(enabled) {
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = enabled;
  }

  hangUp() {
    this.signaling.close();
    for (const id of [...this.peers.keys()]) this._closePeer(id);
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this._setState("ended");
  }

  /** @param {import("./signaling.js").Message} message */
  async _onMessage(message) {
    switch (message.type) {
      case "participant-joined":
        this.participants.set(message.participant.id, message.participant);
        this._announceParticipants();
        break;
      case "participant-left":
        this.participants.delete(message.participant_id);
        this._closePeer(message.participant_id);
        this._announceParticipants();
        break;
      case "offer":
      case "answer":
        await this._onDescription(message.from, { type: message.type, sdp: message.sdp });
        break;
      case "candidate":
        await this._onCandidate(message.from, message.candidate);
        break;
      case "error":
        console.warn(`signaling error ${message.code}: ${message.message}`);
        break;
    }
  }

  /**
   * @param {Participant} participant
   * @param {{initiate: boolean}} options
   * @returns {Peer}
   */
  _createPeer(participant, { initiate }) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    /** @type {Peer} */
    const peer = {
      pc, participant, polite: /** @type {string} */ (this.selfId) > participant.id,
      makingOffer: false, ignoreOffer: false, pendingCandidates: [], stream: new MediaStream(),
    };
    this.peers.set(participant.id, peer);
    pc.ontrack = ({ track }) => {
      peer.stream.addTrack(track);
      this.onremotestream(participant, peer.stream);
    };
    pc.onicecandidate = ({ candidate }) => {
      this.signaling.send({ type: "candidate", to: participant.id, candidate: candidate ? candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        const description = /** @type {RTCSessionDescription} */ (pc.localDescription);
        this.signaling.send({ type: description.type, to: participant.id, sdp: description.sdp });
      } catch (err) {
        console.error("negotiation failed", err);
      } finally {
        peer.makingOffer = false;
      }
    };
    pc.onconnectionstatechange = () => this._updateState();
    if (initiate) this._addLocalMedia(pc);
    return peer;
  }

  /** Send our tracks, or ask to receive only when we have no camera or microphone. @param {RTCPeerConnection} pc */
  _addLocalMedia(pc) {
    const tracks = this.localStream?.getTracks() ?? [];
    for (const track of tracks) pc.addTrack(track, /** @type {MediaStream} */ (this.localStream));
    for (const kind of ["audio", "video"]) {
      if (!tracks.some((t) => t.kind === kind) && !pc.getTransceivers().some((t) => t.receiver.track.kind === kind)) {
        pc.addTransceiver(kind, { direction: "recvonly" });
      }
    }
  }

  /**
   * @param {string} from
   * @param {RTCSessionDescriptionInit} description
   */
  async _onDescription(from, description) {
    let peer = this.peers.get(from);
    if (!peer) {
      const participant = this.participants.get(from);
      if (!participant || description.type !== "offer") return;
      peer = this._createPeer(participant, { initiate: false });
    }
    const { pc } = peer;
    const collision = description.type === "offer" && (peer.makingOffer || pc.signalingState !== "stable");
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    await pc.setRemoteDescription(description);
    if (description.type === "offer") {
      // Added after the offer is applied, our tracks reuse the transceivers it created: one round trip.
      if (pc.getSenders().every((s) => !s.track)) {
        for (const track of this.localStream?.getTracks() ?? []) pc.addTrack(track, /** @type {MediaStream} */ (this.localStream));
      }
      await pc.setLocalDescription();
      const answer = /** @type {RTCSessionDescription} */ (pc.localDescription);
      this.signaling.send({ type: answer.type, to: from, sdp: answer.sdp });
    }
    for (const candidate of peer.pendingCandidates.splice(0)) await this._addCandidate(peer, candidate);
  }

  /**
   * @param {string} from
   * @param {RTCIceCandidateInit | null} candidate
   */
  async _onCandidate(from, candidate) {
    const peer = this.peers.get(from);
    if (!peer || !candidate) return;
    if (!peer.pc.remoteDescription) {
      peer.pendingCandidates.push(candidate);
      return;
    }
    await this._addCandidate(peer, candidate);
  }

  /** @param {Peer} peer @param {RTCIceCandidateInit} candidate */
  async _addCandidate(peer, candidate) {
    try {
      await peer.pc.addIceCandidate(candidate);
    } catch (err) {
      if (!peer.ignoreOffer) console.warn("could not add an ICE candidate", err);
    }
  }

  /** @param {string} id */
  _closePeer(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.pc.close();
    this.peers.delete(id);
    this.onparticipantleft(id);
    this._updateState();
  }

  _announceParticipants() {
    this.onparticipants([...this.participants.values()]);
  }

  _updateState() {
    if (this.state === "ended") return;
    const states = [...this.peers.values()].map((p) => p.pc.connectionState);
    /** @type {CallState} */
    let state;
    if (states.includes("connected")) state = "connected";
    else if (!this.signalingOpen) state = "failed";
    else if (states.includes("failed")) state = "failed";
    else if (states.includes("disconnected")) state = "reconnecting";
    else if (states.length === 0) state = "waiting";
    else state = "connecting";
    this._setState(state);
  }

  /** @param {CallState} state */
  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onstatechange(state);
  }
}
