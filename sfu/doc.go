// Package sfu forwards RTP between participants' WebRTC peer connections
// (pion/webrtc v3). It knows nothing of the rules: it opens and closes the
// media gates that package lobby decides. All pion imports stay here.
//
// An SFU owns one pion API and one UDP port (an ICE UDP mux) shared by every
// peer connection. A Room holds the Peers of one live session. Each Peer has
// two peer connections: "up", offered by the client, on which it publishes
// camera, microphone and screen; and "down", offered by the server, which
// carries every other peer's tracks and is renegotiated whenever a track
// appears or goes away.
//
// The media gate is per edge (publisher → subscriber) and per source (a
// peer's audio or video). Both default to the safe value for their purpose:
// edges start closed, sources start allowed. Their state is kept by peer ID,
// independent of whether the peers are connected, so the lobby may set it
// before or after AddPeer. The forwarding path reads them with atomic loads
// only; see forward.go.
//
// Each published track has one goroutine that reads its packets straight
// into a fixed ring of packet buffers (ring.go), parses the header once and
// writes the packet to every open down-track with that subscriber's SSRC,
// payload type and sequence number set on a header value of its own; the
// packet's bytes are shared and never copied before SRTP. The ring is also
// the cache from which subscribers' NACKs are answered (the SFU registers no
// pion interceptors). Nothing on this path allocates; pion's SRTP write
// path below it does (see BENCHMARKS.md). pion writes each packet with its
// own WriteTo on the mux socket, in the forwarding goroutine; the socket's
// wrapper (batchconn.go) queues the RTP written during one fan-out and sends
// it with a single sendmmsg when the loop ends.
package sfu
