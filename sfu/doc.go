// Package sfu forwards RTP between participants' WebRTC peer connections
// (pion/webrtc v3). It knows nothing of the rules: it opens and closes the
// media gates that package lobby decides. All pion imports stay here.
//
// An SFU owns one pion API and one UDP port (an ICE UDP mux, on IPv4 and,
// where the host has it, IPv6) shared by every peer connection; optionally
// one TCP port for passive ICE-TCP candidates (tcp.go), for networks that
// drop UDP, and an embedded TURN relay that relays only to the SFU's own
// media addresses (turn.go). A client whose network changes restarts ICE
// on the same connections (Peer.RestartICE, and a restart offer on up). A Room holds the Peers of one live session. Each Peer has
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
// pion interceptors). For a subscriber whose connection negotiated AES-GCM
// (every current browser), the SFU encrypts the packet itself with the keys
// of pion's DTLS handshake (srtp.go, downout.go), straight into a slot of the
// track's send batch, and one sendmmsg sends the whole fan-out
// (sendbatch_linux.go) on the SFU's own UDP socket, which the Go netpoller
// does not watch (udpsock_linux.go); on an ICE-TCP pair it queues the
// RFC 4571 frame on the connection instead. Nothing on this path allocates, takes a
// lock another forwarder holds, or copies the payload. pion still does ICE,
// DTLS, RTCP, and the RTP of connections with another SRTP profile.
package sfu
