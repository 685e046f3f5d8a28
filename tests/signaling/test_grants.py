"""Room tokens and room names: what a token carries, and the one way a consultation's room is named."""

from __future__ import annotations

import pytest

from server.consultations.room_tokens import room_token, verify_room_token
from server.errors import Unauthenticated
from server.identity.tokens import KeyRing
from server.settings import Secret
from signaling.grants import GUEST, HOST, RoomClaims, consultation_of_room, room_id_for

KEYS = KeyRing(current=Secret("r" * 64))


def test_room_names_round_trip() -> None:
    """Consultation 42's room is named consultation:42, and that name gives back 42."""
    assert room_id_for(42) == "consultation:42"
    assert consultation_of_room(room_id_for(42)) == 42


@pytest.mark.parametrize("name", ["consultation:", "consultation:x", "room:1", "1", "consultation:-1"])
def test_names_that_are_not_a_consultations_room_are_refused(name: str) -> None:
    """Each row: a room name with no consultation number, one that is not a number or is negative, or another prefix,
    names no consultation: ValueError."""
    with pytest.raises(ValueError):
        consultation_of_room(name)


@pytest.mark.parametrize("grants", [HOST, GUEST])
def test_a_room_token_carries_identity_room_and_grants(grants) -> None:  # type: ignore[no-untyped-def]
    """Each row (host's grants, guest's grants): a room token verifies back to exactly the claims it was issued with."""
    claims = RoomClaims(identity="guest:abc", room=room_id_for(7), name="张伟", role="patient", user_id=None,
                        grants=grants)
    assert verify_room_token(KEYS, "telemed", room_token(KEYS, "telemed", claims)) == claims


def test_a_room_token_from_another_issuer_is_refused() -> None:
    """A room token issued under another issuer's name, though signed with the same key, is refused as
    unauthenticated."""
    claims = RoomClaims(identity="user:1", room=room_id_for(7), name="x", role="specialist", user_id=1, grants=HOST)
    with pytest.raises(Unauthenticated):
        verify_room_token(KEYS, "telemed", room_token(KEYS, "someone-else", claims))
