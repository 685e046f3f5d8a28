"""A room's whole state as one event: how a node starts a room's log again from its copy when Redis lost it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .events import MemberState, PendingChat, Snapshot
from .members import Member, Status

if TYPE_CHECKING:
    from .room import Room


def take(room: Room) -> Snapshot:
    """The whole room as of the last event applied."""
    return Snapshot(
        seq=room.seq, session=room.session, chat=room.chat, mode=room.mode,  # type: ignore[arg-type]
        members=[MemberState(participant=m.participant, grants=m.grants, identity=m.identity, at=m.at,
                             resume_hash=m.resume_hash, status=m.status.value, seated=m.seated,
                             consent_id=m.consent_id, invitation=m.invitation, epoch=m.epoch,
                             chat_from=m.chat_from, history=m.history, keeps_seat=m.keeps_seat,
                             grants_revision=m.grants_revision)
                 for m in room.members.values()],
        pending_chat=[PendingChat(seq=seq, sender=sender, node=node, line=line)
                      for seq, (sender, node, line) in room.pending_chat.items()],
        relay_node=room.relay_node, relay_epoch=room.relay_epoch, lost_nodes=sorted(room.lost_nodes),
        stopping=sorted(room.stopping), recording_by=room.recording_by, patient=room.patient,
        patient_consent_id=room.patient_consent_id)


def restore(room: Room, snapshot: Snapshot) -> None:
    """Make ``room`` the room the snapshot describes."""
    room.seq, room.session, room.chat, room.mode = snapshot.seq, snapshot.session, list(snapshot.chat), snapshot.mode
    room.members = {m.participant.id: Member(m.participant, m.grants, m.identity, m.at, m.resume_hash,
                                             Status(m.status), m.seated, m.consent_id, m.invitation, m.epoch,
                                             m.chat_from, m.history, m.keeps_seat, m.grants_revision)
                    for m in snapshot.members}
    room.pending_chat = {p.seq: (p.sender, p.node, p.line) for p in snapshot.pending_chat}
    room.relay_node, room.relay_epoch = snapshot.relay_node, snapshot.relay_epoch
    room.lost_nodes, room.stopping = set(snapshot.lost_nodes), set(snapshot.stopping)
    room.recording_by, room.patient, room.patient_consent_id = \
        snapshot.recording_by, snapshot.patient, snapshot.patient_consent_id
