// A consultation call. Peer to peer (two people): one RTCPeerConnection per remote participant,
// negotiated with the "perfect negotiation" pattern, so offers that cross on the wire resolve
// themselves (the participant with the larger id is polite and rolls back its own offer).
// Relay (three or more, or recording): one connection to the server's relay (relay-link.js). The room
// says which, in "joined" and "mode" messages; the switch needs nothing from the user.
// Audio only works in both: the relay stops forwarding us video, or, peer to peer, each participant stops
// sending us theirs on their call with us (`receive` to them; see signaling/PROTOCOL.md). The choice is
// ours and outlives every connection, so it carries over when the room switches either way.

import { CLOSE } from "./codes.js";
import { RELAY, RelayLink, loudness } from "./relay-link.js";
import { SignalingSession } from "./signaling.js";

/**
 * @typedef {import("./signaling.js").Participant} Participant
 * @typedef {import("./signaling.js").MediaState} MediaState
 * @typedef {"idle"|"connecting"|"not-open"|"lobby"|"waiting"|"connected"|"reconnecting"|"failed"|"ended"|"denied"|"removed"|"consent-withdrawn"|"invitation-revoked"|"not-a-participant"|"session-ended"|"logged-out"|"room-closed"} CallState
 * @typedef {{pc: RTCPeerConnection, participant: Participant, polite: boolean, makingOffer: boolean,
 *            ignoreOffer: boolean, pendingCandidates: RTCIceCandidateInit[], stream: MediaStream,
 *            videoWish: Promise<void>}} Peer   videoWish: our video's encodings being turned off or on, one at a time
 */

/** Why the server may send someone away for good: a host removed them, they withdrew their consent to
 * the video visit, their invitation was revoked, they were taken off the consultation (or their account
 * disabled), their password was reset, or (refusing a room token) they are no longer logged in. Each is a
 * final state of the call. */
const GONE = ["removed", "consent-withdrawn", "invitation-revoked", "not-a-participant", "session-ended",
  "logged-out"];
/** Every state the call ends in for good: nothing after it changes the state. */
const ENDINGS = ["ended", "denied", "failed", "room-closed", ...GONE];

export class ConsultationCall {
  /**
   * @param {{signalingUrl: string,
   *          fetchToken: () => Promise<{token: string, iceServers: RTCIceServer[],
   *                                     iceTransportPolicy?: RTCIceTransportPolicy}>,
   *          localStream: MediaStream | null}} options
   */
  constructor({ signalingUrl, fetchToken, localStream }) {
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {RTCIceTransportPolicy} "relay": media only through TURN, as the server says */
    this.iceTransportPolicy = "all";
    this.signaling = new SignalingSession({
      url: signalingUrl,
      fetchToken: async () => {
        const { token, iceServers, iceTransportPolicy } = await fetchToken();
        this.iceServers = iceServers;
        this.iceTransportPolicy = iceTransportPolicy ?? "all";
        return token;
      },
    });
    this.localStream = localStream;
    /** @type {Participant | null} */
    this.self = null;
    /** @type {Map<string, Participant>} */
    this.participants = new Map();
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    /** @type {CallState} */
    this.state = "idle";
    this.link = "connecting";
    this.inLobby = false;
    this.media = { muted: false, camera_off: false, screen_sharing: false };
    /** @type {MediaStreamTrack | null} a shared screen, sent in place of the camera */
    this.screen = null;
    /** @type {"p2p"|"relay"} */
    this.mode = "p2p";
    this.relaySlots = 0;
    /** The relay we are connected to (the room's relay_epoch): a new one means connecting again. */
    this.relayEpoch = 0;
    /** @type {RelayLink | null} */
    this.relay = null;
    this.recording = false;
    /** Whether we asked for audio only: the relay stops forwarding the others' video, or peer to peer they
     * stop sending us theirs. */
    this.audioOnly = false;
    /** @type {Map<string, boolean | null>} what we last told each participant of our wish for their video
     * (none: nothing yet, which they take as video; null: they may have missed it, say it again) */
    this.toldVideo = new Map();
    /** @type {Set<string>} the participants who asked us for audio only: our calls with them carry no video */
    this.audioOnlyFor = new Set();
    /** @type {Set<string>} who the relay we are connected to forwards none of our video (its "audience") */
    this.relayAudience = new Set();

    /** @type {(state: CallState) => void} */
    this.onstatechange = () => {};
    /** @type {(participant: Participant, stream: MediaStream) => void} */
    this.onremotestream = () => {};
    /** @type {(participantId: string) => void} */
    this.onparticipantleft = () => {};
    /** @type {(participants: Participant[]) => void} */
    this.onparticipants = () => {};
    /** @type {(waiting: Participant[]) => void} only for those who may admit */
    this.onlobby = () => {};
    /** @type {(grants: {publish: boolean, subscribe: boolean, admit: boolean, record: boolean, moderate: boolean}) => void}
     * what we may do in the room now (an administrator changed our account during the call) */
    this.ongrants = () => {};
    /** @type {(line: {id: number, from: string, name: string, text: string, at: number}) => void} */
    this.onchat = () => {};
    /** @type {(participantId: string, status: "reconnecting"|"back") => void} */
    this.onpeerstatus = () => {};
    /** @type {(mode: "p2p"|"relay") => void} */
    this.onmode = () => {};
    /** @type {(participantId: string, video: "high"|"low"|"paused") => void} what comes to us of someone's
     * video: through the relay, what it forwards; peer to peer, "paused" while we chose audio only, else "high" */
    this.onvideostate = () => {};
    /** @type {(audioOnly: Set<string>) => void} who gets only our audio now: peer to peer, those who asked
     * us for it; through the relay, those it forwards none of our video to (their choice or their link) */
    this.onaudience = () => {};
    /** @type {(participantId: string, media: MediaState) => void} */
    this.onmedia = () => {};
    /** @type {(state: {on: boolean, by: string | null, reason: string}) => void} */
    this.onrecording = () => {};
    /** @type {(participantId: string, given: boolean) => void} */
    this.onconsent = () => {};
    /** @type {(error: {code: string, message: string}) => void} */
    this.onerror = () => {};
  }

  /**
   * Audio only (true): nobody's video comes to us, to spare a weak link; false: video again. Through the
   * relay we ask the relay; peer to peer, each participant (they turn their video to us off or on, with a
   * key frame on the way back). Shown on each tile at once.
   * @param {boolean} on
   */
  setAudioOnly(on) {
    this.audioOnly = on;
    this.relay?.receiveVideo(!on);
    this.relay?.showVideoStates();  // a pause our link caused is now one we chose, or no longer
    this._tellVideoWish();
    if (!this.relay) for (const id of this.peers.keys()) this._showPeerVideo(id);
  }

  /** Ask the relay to try video again after it paused it for our link (it tries the low layer at once). */
  retryVideo() {
    this.audioOnly = false;
    this.relay?.receiveVideo(true);
  }

  /** @param {boolean} on start or stop recording (needs the record grant and everyone's consent) */
  setRecording(on) {
    return this.signaling.send({ type: "recording", on });
  }

  start() {
    this._setState("connecting");
    this.signaling.onmessage = (message) => this._onMessage(message).catch((err) => console.error(err));
    this.signaling.onlinkstate = (link) => {
      this.link = link;
      this._updateState();
    };
    this.signaling.onend = (code, reason) => {
      if (reason === "denied") this._setState("denied");
      // A refused room token (code null) ends the call with its reason: the room closed, the link withdrawn...
      else if (GONE.includes(reason) || reason === "room-closed") this._setState(/** @type {CallState} */ (reason));
      else if (code !== CLOSE.NORMAL) this._setState("failed");
      this._endMedia();
      // Sent away for good: the camera and the microphone (and a shared screen) are let go, as hanging up does.
      if (GONE.includes(this.state) || this.state === "denied" || this.state === "room-closed") this._releaseDevices();
    };
    this.signaling.start();
  }

  /** @param {boolean} enabled */
  setMicrophoneEnabled(enabled) {
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = enabled;
    this._sendMediaState({ muted: !enabled });
  }

  /** @param {boolean} enabled */
  setCameraEnabled(enabled) {
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = enabled;
    this._sendMediaState({ camera_off: !enabled });
  }

  /**
   * Send a shared screen in place of the camera, or the camera again (null). Only our own video changes:
   * in relay mode nothing is renegotiated, and the others' streams are not touched.
   * @param {MediaStreamTrack | null} screen
   */
  async shareScreen(screen) {
    this.screen?.stop();
    this.screen = screen;
    const video = this._outgoingVideo();
    await this.relay?.setVideo(video);
    for (const peer of this.peers.values()) await this._sendVideo(peer.pc, video);
    // A shared screen goes to those who asked for audio only too (the relay does the same): it is what
    // they are there to look at.
    for (const peer of this.peers.values()) this._applyVideoWish(peer);
    this._sendMediaState({ screen_sharing: Boolean(screen) });
    this._announceAudience();
  }

  /** @returns {MediaStreamTrack | null} */
  _outgoingVideo() {
    return this.screen ?? this.localStream?.getVideoTracks()[0] ?? null;
  }

  /** @returns {MediaStreamTrack[]} what we send: the microphone, and the shared screen or the camera */
  _localTracks() {
    return (this.localStream?.getAudioTracks() ?? []).concat(this._outgoingVideo() ?? []);
  }

  /**
   * @param {RTCPeerConnection} pc a call to one participant
   * @param {MediaStreamTrack | null} track
   */
  async _sendVideo(pc, track) {
    const transceiver = pc.getTransceivers().find((t) => t.receiver.track.kind === "video" && !t.stopped);
    if (!transceiver) {
      if (track) pc.addTrack(track, this.localStream ?? new MediaStream());  // renegotiates by itself
      return;
    }
    // Without a camera the call only received video: sending too needs one renegotiation, started by
    // the browser when the direction changes (onnegotiationneeded).
    if (track && !transceiver.direction.startsWith("send")) transceiver.direction = "sendrecv";
    await transceiver.sender.replaceTrack(track);
  }

  /**
   * How loud each remote participant is right now, from 0 to 1 (the level the browser measures on the audio
   * it decodes), so the page can show who speaks.
   * @returns {Promise<Map<string, number>>} participant id -> level; 0 for one whose level is unknown
   */
  async audioLevels() {
    if (this.relay) return this.relay.audioLevels();
    const levels = new Map();
    for (const [id, peer] of this.peers) {
      const receiver = peer.pc.getReceivers().find((r) => r.track.kind === "audio");
      const [level] = receiver ? loudness(await receiver.getStats()).values() : [];
      levels.set(id, level ?? 0);
    }
    return levels;
  }

  /** @param {string} text */
  sendChat(text) {
    return this.signaling.send({ type: "chat", text });
  }

  /** @param {string} participantId */
  admit(participantId) {
    this.signaling.send({ type: "admit", participant_id: participantId });
  }

  /** @param {string} participantId */
  deny(participantId) {
    this.signaling.send({ type: "deny", participant_id: participantId });
  }

  /** @param {string} participantId */
  remove(participantId) {
    this.signaling.send({ type: "remove", participant_id: participantId });
  }

  hangUp() {
    this.signaling.close();
    this._endMedia();
    this._releaseDevices();
    this._setState("ended");
  }

  _releaseDevices() {
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.screen?.stop();
  }

  /** @param {Partial<MediaState>} change */
  _sendMediaState(change) {
    this.media = { ...this.media, ...change };
    this.signaling.send({ type: "media-state", ...this.media });
  }

  /** @param {import("./signaling.js").Message} message */
  async _onMessage(message) {
    switch (message.type) {
      case "lobby":
        this.self = message.self;
        this.inLobby = true;
        this._updateState();
        break;
      case "joined":
        this._onJoined(message);
        break;
      case "participant-joined":
        this.participants.set(message.participant.id, message.participant);
        this._tellVideoWish();
        this._announceParticipants();
        break;
      case "participant-left":
        this.participants.delete(message.participant_id);
        this.toldVideo.delete(message.participant_id);
        this.audioOnlyFor.delete(message.participant_id);
        this.relayAudience.delete(message.participant_id);
        this._closePeer(message.participant_id);
        this._announceParticipants();
        this._announceAudience();
        break;
      case "participant-reconnecting":
        this.onpeerstatus(message.participant_id, "reconnecting");
        break;
      case "participant-resumed":
        // What we told their old socket while they were away is lost: say it again.
        if (this.toldVideo.has(message.participant_id)) this.toldVideo.set(message.participant_id, null);
        this._tellVideoWish();
        this.onpeerstatus(message.participant_id, "back");
        break;
      case "receive": {
        // A participant asks for audio only (or video again) on their call with us.
        if (message.video) this.audioOnlyFor.delete(message.from);
        else this.audioOnlyFor.add(message.from);
        const peer = this.peers.get(message.from);
        if (peer) this._applyVideoWish(peer);
        this._announceAudience();
        break;
      }
      case "audience":
        this.relayAudience = new Set(message.audio_only);
        this._announceAudience();
        break;
      case "lobby-update":
        this.onlobby(message.waiting);
        break;
      case "grants":
        this.ongrants(message.grants);
        break;
      case "offer":
      case "answer":
        // An answer to an offer we no longer wait for (an earlier link's) is dropped by the link.
        // A new relay starts with video: tell it again if we asked for audio only.
        if (message.from === RELAY && await this.relay?.answer(message.sdp, message.offer_id) && this.audioOnly) {
          this.relay?.receiveVideo(false);
        }
        else await this._onDescription(message.from, { type: message.type, sdp: message.sdp });
        break;
      case "mode":
        this._setMode(message.mode, message.relay_slots, { epoch: message.relay_epoch });
        break;
      case "layout":
        this.relay?.setLayout(message.slots, message.audio_slots, message.video);
        break;
      case "recording":
        this.recording = message.on;
        this.onrecording(message);
        break;
      case "consent": {
        const participant = this.participants.get(message.participant_id);
        if (participant) participant.recording_consent = message.recording;
        if (this.self?.id === message.participant_id) this.self.recording_consent = message.recording;
        this.onconsent(message.participant_id, message.recording);
        break;
      }
      case "candidate":
        await this._onCandidate(message.from, message.candidate);
        break;
      case "ice-restart":
        this.peers.get(message.from)?.pc.restartIce();
        break;
      case "media-state": {
        const participant = this.participants.get(message.participant_id);
        if (participant) participant.media = message.media;
        this.onmedia(message.participant_id, message.media);
        if (!this.relay && this.peers.has(message.participant_id)) this._showPeerVideo(message.participant_id);
        break;
      }
      case "chat":
        this.onchat(message);
        break;
      case "error":
        console.warn(`signaling error ${message.code}: ${message.message}`);
        this.onerror(message);
        break;
    }
  }

  /** @param {import("./signaling.js").Message} message */
  _onJoined(message) {
    const wasIn = this.self?.id === message.self.id && !this.inLobby;
    this.self = message.self;
    this.inLobby = false;
    const present = new Map(message.participants.map((p) => [p.id, p]));
    for (const id of [...this.peers.keys()]) {
      if (!present.has(id) || !message.resumed) this._closePeer(id);
    }
    // Wishes about video live as long as both seats: a new seat of ours starts afresh; after a resume, say
    // ours again (a message sent as our socket died may have been lost).
    for (const wishes of [this.toldVideo, this.audioOnlyFor]) {
      for (const id of [...wishes.keys()]) if (!present.has(id) || !(message.resumed && wasIn)) wishes.delete(id);
    }
    for (const id of this.toldVideo.keys()) this.toldVideo.set(id, null);
    this.participants = present;
    this.recording = message.recording;
    this.onrecording({ on: message.recording, by: null, reason: "started" });
    this.onconsent(message.self.id, Boolean(message.self.recording_consent));
    if (message.mode === "relay") {
      this._announceParticipants();
      this._setMode("relay", message.relay_slots,
        { restart: !(message.resumed && wasIn), epoch: message.relay_epoch });
      for (const line of message.chat ?? []) this.onchat(line);
      if (message.waiting) this.onlobby(message.waiting);
      if (this.media.muted || this.media.camera_off || this.screen) this._sendMediaState({});
      this._updateState();
      return;
    }
    if (this.mode === "relay") {
      // The room went back to peer to peer while we were away: its "mode" went to our old socket.
      this.mode = "p2p";
      this.onmode("p2p");
      this._closeRelay();
    }
    if (message.resumed && wasIn) {
      // Our network changed: new ICE credentials for every call still open; the others answer.
      for (const peer of this.peers.values()) peer.pc.restartIce();
    }
    // The newcomer (or one just admitted) calls everyone present; calls that survived a resume stay.
    for (const participant of message.participants) {
      if (!this.peers.has(participant.id)) this._createPeer(participant, { initiate: true });
    }
    for (const line of message.chat ?? []) this.onchat(line);
    if (message.waiting) this.onlobby(message.waiting);
    if (this.media.muted || this.media.camera_off || this.screen) this._sendMediaState({});
    this._tellVideoWish();
    this._announceParticipants();
    this._updateState();
  }

  /**
   * Follow the room's media mode: into relay, close the calls to each participant and connect once to
   * the relay (once per relay: a relay restarted elsewhere has a new epoch); back to peer to peer, drop
   * the relay and call the others again.
   * @param {"p2p"|"relay"} mode
   * @param {number} slots
   * @param {{restart?: boolean, epoch?: number}} options
   */
  _setMode(mode, slots, { restart = false, epoch = 0 } = {}) {
    const changed = mode !== this.mode;
    this.mode = mode;
    this.onmode(mode);
    if (mode === "relay") {
      if (!changed && !restart && this.relay && epoch === this.relayEpoch) return;
      this._closeAllPeers();
      this.relay?.close();
      this.relaySlots = slots;
      this.relayEpoch = epoch;
      const relay = new RelayLink({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy,
        localStream: this.localStream, slots, epoch,
        send: (m) => this.signaling.send(m), video: this.screen });
      relay.onstream = (id, stream) => {
        const participant = this.participants.get(id);
        if (participant) this.onremotestream(participant, stream);
      };
      relay.ongone = (id) => this.onparticipantleft(id);
      relay.onstatechange = () => this._updateState();
      relay.onvideostate = (id, video) => this.onvideostate(id, video);
      this.relay = relay;
      this.relayAudience = new Set();  // a new relay forwards everyone's video until it says otherwise
      this._announceAudience();
      relay.offer().catch((err) => console.error("relay offer failed", err));
    } else if (changed) {
      this._closeRelay();
      for (const participant of this.participants.values()) {
        // Both sides call again; the one with the larger id initiates so that only one offer is made.
        if (/** @type {Participant} */ (this.self).id > participant.id) this._createPeer(participant, { initiate: true });
      }
      this._tellVideoWish();  // what we chose while relayed
    }
    this._updateState();
  }

  /**
   * Peer to peer, tell each participant our wish for their video wherever they may not know it. Only what
   * went out is taken as told; the rest goes with the next call (our resume, theirs, a newcomer, a choice).
   */
  _tellVideoWish() {
    if (this.mode !== "p2p" || this.inLobby || !this.self) return;
    const video = !this.audioOnly;
    for (const id of this.participants.keys()) {
      if ((this.toldVideo.has(id) ? this.toldVideo.get(id) : true) === video) continue;
      if (this.signaling.send({ type: "receive", to: id, video })) this.toldVideo.set(id, video);
    }
  }

  /** Peer to peer, mark someone's picture as we chose: paused (audio only) or not; a screen they share
   * comes all the same. @param {string} id */
  _showPeerVideo(id) {
    const sharing = this.participants.get(id)?.media?.screen_sharing ?? false;
    this.onvideostate(id, this.audioOnly && !sharing ? "paused" : "high");
  }

  /**
   * Send a participant our video or none, as they asked, on our call with them: the video senders'
   * encodings turned off or on (setParameters). Not a renegotiation: ICE, the SDP and a screen share's
   * replaceTrack are untouched, and the parameters outlive them; checked again after every negotiation all
   * the same. Turned back on, the encoder starts with a key frame. One change at a time per call, since
   * setParameters must be given what the last getParameters returned.
   * @param {Peer} peer
   */
  _applyVideoWish(peer) {
    peer.videoWish = peer.videoWish.then(async () => {
      const active = !this.audioOnlyFor.has(peer.participant.id) || this.screen !== null;
      for (const transceiver of peer.pc.getTransceivers()) {
        if (transceiver.receiver.track.kind !== "video" || transceiver.stopped) continue;
        const parameters = transceiver.sender.getParameters();
        const encodings = parameters.encodings ?? [];
        // None yet: the sender is not negotiated; this runs again when it is.
        if (!encodings.length || encodings.every((e) => (e.active ?? true) === active)) continue;
        for (const encoding of encodings) encoding.active = active;
        await transceiver.sender.setParameters(parameters);
      }
    }).catch((err) => console.warn("could not turn our video to a participant off or on", err));
  }

  _closeRelay() {
    if (!this.relay) return;
    for (const slot of this.relay.slots) if (slot.owner) this.onparticipantleft(slot.owner);
    this.relay.close();
    this.relay = null;
    this._announceAudience();  // peer to peer again: the wishes sent to us count
  }

  /** Say who gets only our audio: the relay's word while relayed, else the wishes the others sent us
   * (nobody while we share a screen, which they get all the same). */
  _announceAudience() {
    this.onaudience(new Set(this.relay ? this.relayAudience : this.screen ? [] : this.audioOnlyFor));
  }

  /**
   * @param {Participant} participant
   * @param {{initiate: boolean}} options
   * @returns {Peer}
   */
  _createPeer(participant, { initiate }) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    /** @type {Peer} */
    const peer = {
      pc, participant, polite: /** @type {Participant} */ (this.self).id > participant.id,
      makingOffer: false, ignoreOffer: false, pendingCandidates: [], stream: new MediaStream(),
      videoWish: Promise.resolve(),
    };
    this.peers.set(participant.id, peer);
    pc.ontrack = ({ track }) => {
      peer.stream.addTrack(track);
      this.onremotestream(participant, peer.stream);
      this._showPeerVideo(participant.id);
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
    // After each negotiation (the first, a renegotiation, an ICE restart): our video to them as they asked.
    pc.onsignalingstatechange = () => {
      if (pc.signalingState === "stable") this._applyVideoWish(peer);
    };
    pc.onconnectionstatechange = () => {
      // A call that broke while signaling stayed up (a network change on the other side): ask for new ICE.
      if (pc.connectionState === "failed" && !peer.polite) pc.restartIce();
      this._updateState();
    };
    if (initiate) this._addLocalMedia(pc);
    return peer;
  }

  /** Send our tracks, or ask to receive only when we have no camera or microphone. @param {RTCPeerConnection} pc */
  _addLocalMedia(pc) {
    const tracks = this._localTracks();
    for (const track of tracks) pc.addTrack(track, this.localStream ?? new MediaStream());
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
        for (const track of this._localTracks()) pc.addTrack(track, this.localStream ?? new MediaStream());
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

  _closeAllPeers() {
    for (const id of [...this.peers.keys()]) this._closePeer(id);
  }

  _endMedia() {
    this._closeAllPeers();
    this._closeRelay();
  }

  _announceParticipants() {
    this.onparticipants([...this.participants.values()]);
  }

  _updateState() {
    if (ENDINGS.includes(this.state) && this.link === "closed") return;
    const states = this.relay ? [this.relay.connectionState] : [...this.peers.values()].map((p) => p.pc.connectionState);
    /** @type {CallState} */
    let state;
    if (this.link === "reconnecting") state = "reconnecting";
    else if (this.link === "not-open") state = "not-open";
    else if (this.link === "connecting") state = "connecting";
    else if (this.inLobby) state = "lobby";
    else if (states.includes("connected")) state = "connected";
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
