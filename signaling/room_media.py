"""The room's rules for media: how it flows (peer to peer, or through a relay on a node the room chooses and
moves when that node goes), recording, and the consents a recording rests on. Part of the pure room
state machine (``Room`` in room.py mixes it in): events in, effects out, no I/O.
"""

from __future__ import annotations

from .effects import Deliver, Effect, StartRelay, StopRelay, relay_conn
from .errors import ConsentMissing, NotRelayed, SignalingError, UnknownParticipant
from .events import Consenting, FromRelay, NodeStopping, Recording, RelayHandoff, RelayLost, Where
from .members import Status
from .messages import (
    ConsentState,
    Error,
    RecordingState,
    RelayAudience,
    RelayedAnswer,
    RelayLayout,
    RoomMode,
    ServerMessage,
)

RELAY_ID = "relay"  # the media relay, as participants address it: offers and candidates go ``to: "relay"``
RELAY_FROM = 3  # seated participants from which media goes through the relay


class MediaRules:
    """How media flows in a room, and its recording. Mixed into ``Room``, whose state it reads and changes."""

    @property
    def recording(self) -> bool:
        return self.recording_by is not None

    @property
    def relay_at(self) -> Where | None:
        return Where(node=self.relay_node, conn=relay_conn(self.room_id, self.relay_epoch)) \
            if self.relay_node else None

    def live(self, node: str) -> bool:
        """Whether a relay may start on ``node``: not lost, not shutting down."""
        return node not in self.lost_nodes and node not in self.stopping

    @property
    def relay_slots(self) -> int:
        return self.max_participants - 1

    def consents(self) -> dict[str, int | None]:
        """Each seated participant's consent record (None: not given)."""
        return {m.id: m.consent_id for m in self.members.values() if m.seated}

    def relied_on(self) -> list[int]:
        """The consent records a recording now rests on: everyone seated, and the patient's."""
        found = {c for c in self.consents().values() if c is not None}
        if self.patient_consent_id is not None:
            found.add(self.patient_consent_id)
        return sorted(found)

    def _on_NodeStopping(self, event: NodeStopping, seq: int) -> list[Effect]:
        """A node is shutting down: a relay it runs moves now, while its sockets go to other nodes."""
        if event.node in self.lost_nodes or event.node in self.stopping:
            return []
        self.stopping.add(event.node)
        return self._move_relay() if self.relay_node == event.node else []

    def _on_RelayLost(self, event: RelayLost, seq: int) -> list[Effect]:
        """The relay of that epoch died on a node that lives on (its worker process): it moves, as when its node
        is lost. A report about a relay already replaced changes nothing."""
        if self.relay_node is None or event.epoch != self.relay_epoch:
            return []
        return self._move_relay()

    def _on_RelayHandoff(self, event: RelayHandoff, seq: int) -> list[Effect]:
        """The node given relay ``epoch`` hands it to another (placement.py), before starting it: it starts
        there, as a new epoch everyone connects to. A node lost or stopping meanwhile is not handed it: the
        relay starts on the node that handed it over (which is live: the relay would have moved otherwise). A
        handoff of a relay already replaced changes nothing."""
        if self.relay_node is None or event.epoch != self.relay_epoch:
            return []
        # (Stopped in case it started anyway: its node gave up waiting on the log, say.)
        stop = StopRelay(self.relay_node, self.relay_epoch)
        self.relay_node = event.node if self.live(event.node) else self.relay_node
        self.relay_epoch += 1
        return [stop, StartRelay(self.relay_node, self.relay_epoch, placed=True),
                *self._to_seated(self._mode_message())]

    def _check_Recording(self, event: Recording) -> SignalingError | None:
        if not event.on and event.by == self.recording_by:
            return self._speaker(event.by)  # who started it may stop it, even if they may no longer record
        if error := self._host(event.by, "record"):
            return error
        if event.on and not self.recording:
            # Those present: a participant reconnecting (whose node died, say) does not hold up a recording;
            # if they come back without consent, it stops then, as for a newcomer.
            missing = [m.participant.name for m in self.members.values()
                       if m.seated and m.status is Status.PRESENT and m.consent_id is None]
            if self.patient is not None and self.patient_consent_id is None \
                    and not any(m.identity == self.patient and m.seated for m in self.members.values()):
                missing.append("the patient")
            if missing:
                return ConsentMissing("Recording needs everyone's consent; not yet given by: "
                                      + ", ".join(missing) + ".")
        return None

    def _on_Recording(self, event: Recording, seq: int) -> list[Effect]:
        if error := self._check_Recording(event):
            return self._refuse(error, self._origin(event.by))
        if event.on == self.recording:
            return []
        if not event.on:
            return self._stop_recording("stopped", by=event.by)
        self.recording_by = event.by
        effects = self._ensure_mode(self.members[event.by].at.node, force=True)
        return effects + self._to_seated(RecordingState(on=True, by=event.by, reason="started"))

    def _on_Consenting(self, event: Consenting, seq: int) -> list[Effect]:
        effects: list[Effect] = []
        if event.identity == self.patient:
            self.patient_consent_id = event.consent_id
            if event.consent_id is None and self.recording \
                    and not any(m.identity == self.patient and m.seated for m in self.members.values()):
                effects += self._stop_recording("consent-withdrawn")  # (a seated patient stops it below)
        for member in self.members.values():
            if member.identity != event.identity:
                continue
            member.consent_id = event.consent_id
            given = event.consent_id is not None
            member.participant = member.participant.model_copy(update={"recording_consent": given})
            if member.seated:
                effects += self._to_seated(ConsentState(participant_id=member.id, recording=given))
                if not given and self.recording:
                    effects += self._stop_recording("consent-withdrawn")
        return effects

    def _check_FromRelay(self, event: FromRelay) -> SignalingError | None:
        if event.epoch and (event.epoch != self.relay_epoch or self.relay_node is None):
            return NotRelayed("That relay has been replaced.")
        target = self.members.get(event.to)
        if target is None or not target.seated:
            return UnknownParticipant(f"No participant {event.to!r} is in this room.")
        return None

    def _on_FromRelay(self, event: FromRelay, seq: int) -> list[Effect]:
        if self._check_FromRelay(event) is not None:
            return []  # the participant left meanwhile, or the relay was replaced
        message: ServerMessage
        if event.type == "answer":
            message = RelayedAnswer(from_=RELAY_ID, sdp=event.sdp or "", offer_id=event.offer_id)
        elif event.type == "layout":
            message = RelayLayout(slots=event.layout, audio_slots=event.audio_layout,
                                  video=event.video_layout)  # type: ignore[arg-type]
        elif event.type == "audience":
            message = RelayAudience(audio_only=event.audio_only)
        else:
            message = Error(code=event.code, message=event.message)
        return [Deliver(self.members[event.to].at, message)]

    def _stop_recording(self, reason: str, *, by: str | None = None) -> list[Effect]:
        """``by``: who stopped it by hand; None when the room stopped it (consent, a departure, the relay)."""
        self.recording_by = None
        return self._to_seated(RecordingState(on=False, by=by, reason=reason))  # type: ignore[arg-type]

    def _ensure_mode(self, node: str, *, force: bool = False, but: str | None = None) -> list[Effect]:
        """Switch to the relay when the room has grown to RELAY_FROM (or ``force``: recording needs it), on
        ``node`` (where the participant who made it so is) unless that node is going; in relay mode, start a
        relay that has no node yet on ``node``.

        ``but``: the newcomer whose ``joined`` already says so; one notice per change per participant, or a
        client connecting on each would offer twice."""
        if self.mode == "relay":
            return self._start_relay(node, but=but) if self.relay_node is None and self.live(node) else []
        if not (force or len(self.participants) >= RELAY_FROM):
            return []
        self.mode = "relay"
        home = node if self.live(node) else self._relay_home()
        return self._start_relay(home, but=but) if home is not None else []

    def _start_relay(self, node: str, *, but: str | None = None) -> list[Effect]:
        self.relay_node = node
        self.relay_epoch += 1
        return [StartRelay(node, self.relay_epoch), *self._to_seated(self._mode_message(), but=but)]

    def _relay_home(self) -> str | None:
        """A node where the relay can run: that of the first participant present on a live node."""
        return next((m.at.node for m in self.members.values()
                     if m.seated and m.status is Status.PRESENT and self.live(m.at.node)), None)

    def _move_relay(self) -> list[Effect]:
        """The relay's node is lost or stopping. A recording stops with it (the interrupted file is finished
        where it can be; a host starts a new one). The relay starts on another node, and everyone connects to
        it (a new epoch); a room small again goes back to peer to peer; with nobody present on a live node
        yet, it starts where the next participant takes or resumes a seat."""
        effects: list[Effect] = self._stop_recording("relay-lost") if self.recording else []
        assert self.relay_node is not None
        effects.append(StopRelay(self.relay_node, self.relay_epoch))
        self.relay_node = None
        if len(self.participants) < RELAY_FROM:
            self.mode = "p2p"
            return effects + self._to_seated(self._mode_message())
        home = self._relay_home()
        return effects + (self._start_relay(home) if home is not None else [])

    def _mode_message(self) -> RoomMode:
        relayed = self.mode == "relay"
        return RoomMode(mode=self.mode, relay_slots=self.relay_slots if relayed else 0,  # type: ignore[arg-type]
                        relay_epoch=self.relay_epoch if relayed else 0)


def sends_media(sdp: str) -> bool:
    """Whether an SDP offers to send audio or video (any m-section not recvonly or inactive)."""
    for section in sdp.split("\nm=")[1:]:
        kind, port = (section.split("\n", 1)[0].split(" ") + ["", ""])[:2]
        if kind not in ("audio", "video") or port == "0":  # port 0: the section was rejected
            continue
        if "a=recvonly" not in section and "a=inactive" not in section:
            return True
    return False
