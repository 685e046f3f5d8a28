"""The signaling wire format: what parses, what each bad message is answered with, and that nothing escapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.errors import MalformedMessage, MessageTooLarge, SignalingError, UnknownMessageType
from signaling.messages import (
    CLIENT_TYPES,
    Admit,
    Candidate,
    IceRestart,
    Join,
    Joined,
    Offer,
    Participant,
    Ping,
    Pong,
    ReceiveVideo,
    RelayedCandidate,
    SendChat,
    SetMediaState,
    dump,
    parse,
)

LIMIT = 64 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type": "join", "protocol": 2, "token": "t"}', Join(protocol=2, token="t")),
        ('{"type": "join", "protocol": 2, "token": "t", "resume": "p.s"}', Join(protocol=2, token="t", resume="p.s")),
        ('{"type": "offer", "to": "p1", "sdp": "v=0"}', Offer(to="p1", sdp="v=0")),
        ('{"type": "ice-restart", "to": "p1"}', IceRestart(to="p1")),
        ('{"type": "media-state", "muted": true, "camera_off": false}',
         SetMediaState(muted=True, camera_off=False, screen_sharing=False)),
        ('{"type": "chat", "text": "血压 150/95"}', SendChat(text="血压 150/95")),
        ('{"type": "admit", "participant_id": "g1"}', Admit(participant_id="g1")),
        ('{"type": "pong"}', Pong()),
        ('{"type": "candidate", "to": "p1", "candidate": null}', Candidate(to="p1", candidate=None)),
        ('{"type": "ping", "id": 3}', Ping(id=3)),
        ('{"type": "ping", "id": "k-7"}', Ping(id="k-7")),  # clients often count with strings
        ('{"type": "offer", "to": "relay", "sdp": "v=0", "offer_id": "2.1"}',
         Offer(to="relay", sdp="v=0", offer_id="2.1")),
        # audio only: asked of the relay, or of the one other participant on a peer-to-peer call
        ('{"type": "receive", "to": "relay", "video": false}', ReceiveVideo(to="relay", video=False)),
        ('{"type": "receive", "to": "p1", "video": true}', ReceiveVideo(to="p1", video=True)),
    ],
)
def test_valid_messages_parse_to_their_type(text: str, expected: object) -> None:
    """Each row: a valid client message (join with or without resume, offer, ICE restart, media state, chat in
    Chinese, admit, pong, candidate, ping with a number or a string id, receive) parses to its typed message, fields
    and all."""
    assert parse(text, max_bytes=LIMIT) == expected


def test_browser_candidate_json_parses() -> None:
    """What Chromium's RTCIceCandidate.toJSON() sends."""
    browser = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0",
               "sdpMLineIndex": 0, "usernameFragment": "abcd"}
    message = parse(json.dumps({"type": "candidate", "to": "p", "candidate": browser}), max_bytes=LIMIT)
    assert isinstance(message, Candidate) and message.candidate is not None
    assert message.candidate.sdpMid == "0"


@pytest.mark.parametrize(
    ("text", "error", "says"),
    [
        ("not json", MalformedMessage, "not valid JSON"),
        ("[1, 2]", MalformedMessage, "JSON object"),
        ('{"to": "x"}', MalformedMessage, "'type'"),
        ('{"type": 7}', MalformedMessage, "'type'"),
        ('{"type": "teleport"}', UnknownMessageType, "teleport"),
        ('{"type": "offer", "to": "p1"}', MalformedMessage, "sdp: Field required"),
        ('{"type": "offer", "to": "", "sdp": "v=0"}', MalformedMessage, "to:"),
        ('{"type": "offer", "to": "p1", "sdp": 5}', MalformedMessage, "sdp:"),
        ('{"type": "join", "protocol": 2, "token": "t", "admin": true}', MalformedMessage, "admin"),
        ('{"type": "join", "protocol": 2}', MalformedMessage, "token: Field required"),
        ('{"type": "chat", "text": ""}', MalformedMessage, "text"),
        ('{"type": "chat", "text": "' + "x" * 2001 + '"}', MalformedMessage, "text"),
        ('{"type": "media-state", "muted": "yes", "camera_off": false}', MalformedMessage, "muted"),
        ('{"type": "candidate", "to": "p", "candidate": {"candidate": "c", "sdpMLineIndex": -1}}',
         MalformedMessage, "sdpMLineIndex"),
        (b"\xff\xfe", MalformedMessage, "not valid JSON"),
        # an offer to the relay names itself, so the answer can name it back; to a participant, it does not
        ('{"type": "offer", "to": "relay", "sdp": "v=0"}', MalformedMessage, "offer_id"),
        ('{"type": "offer", "to": "p1", "sdp": "v=0", "offer_id": "1"}', MalformedMessage, "offer_id"),
        ('{"type": "ping", "id": true}', MalformedMessage, "id"),
        ('{"type": "receive", "to": "p1"}', MalformedMessage, "video: Field required"),
        ('{"type": "receive", "to": "", "video": false}', MalformedMessage, "to:"),
        ('{"type": "receive", "to": "p1", "video": "no"}', MalformedMessage, "video"),
        # numbers and nesting past the documented limits (int() of 5,000 digits raises ValueError, and
        # json's C parser raises RecursionError 1,000 levels down: neither may escape)
        ('{"type": "ping", "id": ' + "9" * 5000 + "}", MalformedMessage, "longer than 32"),
        ('{"type": "ping", "id": 1.' + "5" * 40 + "}", MalformedMessage, "longer than 32"),
        ('{"type": "ping", "id": NaN}', MalformedMessage, "NaN"),
        ("[" * 60_000, MalformedMessage, "deeper than 32"),
        ('{"type": "ping", "x": ' + "[" * 33 + "]" * 33 + "}", MalformedMessage, "deeper than 32"),
        ('{"type": "ping", "x": ' + '{"a": ' * 900 + "1" + "}" * 900 + "}", MalformedMessage, "deeper than 32"),
    ],
)
def test_bad_messages_say_what_is_wrong(text: str | bytes, error: type[SignalingError], says: str) -> None:
    """Each row: a bad message raises its SignalingError (malformed or unknown type), and the error's message names
    what is wrong: not JSON, the field, the type, or a number or nesting past the limits."""
    with pytest.raises(error) as caught:
        parse(text, max_bytes=LIMIT)
    assert says in caught.value.message


def test_nesting_up_to_the_limit_is_only_judged_by_the_fields() -> None:
    """32 levels pass the depth check (and are refused as an unknown field, not as too deep)."""
    with pytest.raises(MalformedMessage) as caught:
        parse('{"type": "ping", "x": ' + "[" * 31 + "]" * 31 + "}", max_bytes=LIMIT)
    assert "deeper" not in caught.value.message and "x" in caught.value.message


def test_size_limit_counts_bytes_not_characters() -> None:
    """The size limit counts UTF-8 bytes: an offer of 100 Chinese characters, under 200 characters but over 200
    bytes, is too large for a 200-byte limit."""
    text = json.dumps({"type": "offer", "to": "p", "sdp": "会" * 100}, ensure_ascii=False)
    assert len(text) < 200 < len(text.encode())
    with pytest.raises(MessageTooLarge):
        parse(text, max_bytes=200)


def test_server_messages_use_wire_names() -> None:
    """Server messages go out with their wire field names (self, from), not the Python ones (self_, from_)."""
    me = Participant(id="a", user_id=1, name="李明", role="county_doctor")
    assert json.loads(dump(Joined(self_=me, participants=())))["self"]["name"] == "李明"
    assert json.loads(dump(RelayedCandidate(from_="a", candidate=None))) == {
        "type": "candidate", "from": "a", "candidate": None}


FIELDS = st.sampled_from(["type", "to", "sdp", "candidate", "id", "text", "token", "protocol", "x"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.sampled_from(CLIENT_TYPES),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FIELDS, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), JSON_VALUES.map(json.dumps)))
def test_arbitrary_input_either_parses_or_raises_a_signaling_error(data: str | bytes) -> None:
    """Nothing a client sends can raise anything but a SignalingError (which the server answers)."""
    try:
        parse(data, max_bytes=LIMIT)
    except SignalingError:
        pass
