"""Media streams over WebSocket (Twilio Media Streams): wire protocol, socket, playout."""
