"""A consultation room as a pure state machine: events in, new state and messages to send out. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import AlreadyJoined, NotJoined, RoomFull, UnknownParticipant
from .messages import (
    Answer,
    Candidate,
    Joined,
    Offer,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    RelayedAnswer,
    RelayedCandidate,
    RelayedOffer,
    ServerMessage,
)


@dataclass(frozen=True)
class Send:
    """An effect: deliver ``message`` to participant ``to``."""

    to: str
    message: ServerMessage


class Room:
    """Who is in one consultation's room, and what each event makes the others see."""

    def __init__(self, room_id: str, *, max_participants: int) -> None:
        self.room_id = room_id
        self.max_participants = max_participants
        self._participants: dict[str, Participant] = {}  # in order of joining

    @property
    def participants(self) -> tuple[Participant, ...]:
        return tuple(self._participants.values())

    @property
    def is_empty(self) -> bool:
        return not self._participants

    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._participants

    def join(self, newcomer: Participant) -> list[Send]:
        if newcomer.id in self._participants:
            raise AlreadyJoined("You have already joined this room.")
        if len(self._participants) >= self.max_participants:
            raise RoomFull(f"The room is full ({self.max_participants} participants).")
        others = self.participants
        self._participants[newcomer.id] = newcomer
        effects = [Send(newcomer.id, Joined(self_=newcomer, participants=others))]
        effects += [Send(p.id, ParticipantJoined(participant=newcomer)) for p in others]
        return effects

    def leave(self, participant_id: str) -> list[Send]:
        """Remove a participant; leaving twice, or without having joined, changes nothing."""
        if self._participants.pop(participant_id, None) is None:
            return []
        return [Send(p.id, ParticipantLeft(participant_id=participant_id)) for p in self.participants]

    def forward(self, sender_id: str, message: Offer | Answer | Candidate) -> list[Send]:
        """Pass negotiation from one participant to another, stamped with who sent it."""
        if sender_id not in self._participants:
            raise NotJoined("Join the room before sending negotiation messages.")
        if message.to not in self._participants or message.to == sender_id:
            raise UnknownParticipant(f"No other participant {message.to!r} is in this room.")
        relayed: ServerMessage
        if isinstance(message, Offer):
            relayed = RelayedOffer(from_=sender_id, sdp=message.sdp)
        elif isinstance(message, Answer):
            relayed = RelayedAnswer(from_=sender_id, sdp=message.sdp)
        else:
            relayed = RelayedCandidate(from_=sender_id, candidate=message.candidate)
        return [Send(message.to, relayed)]
