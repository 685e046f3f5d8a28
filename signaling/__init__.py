"""WebRTC signaling: the WebSocket protocol, rooms as pure state machines, and the log nodes share (Redis)."""
