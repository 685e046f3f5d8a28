"""WebRTC signaling: the WebSocket protocol, rooms, and (later) the bus between server nodes."""
