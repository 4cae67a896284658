// Package sfu forwards RTP between participants' WebRTC peer connections
// (pion/webrtc v3). It knows nothing of the rules: it opens and closes the
// media gates that package lobby decides. All pion imports stay here.
package sfu
