package webm

// vp8Keyframe reports whether frame, a whole VP8 frame, is a keyframe
// (RFC 6386 section 9.1: bit 0 of the frame tag is 0 for keyframes).
func vp8Keyframe(frame []byte) bool {
	return len(frame) > 0 && frame[0]&0x01 == 0
}

// vp8Size returns the width and height of a VP8 keyframe, or ok=false if
// frame is not a keyframe with a valid start code.
func vp8Size(frame []byte) (width, height int, ok bool) {
	if len(frame) < 10 || !vp8Keyframe(frame) ||
		frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	// The top two bits of each dimension are a scaling hint, not size.
	width = int(frame[6]) | int(frame[7]&0x3f)<<8
	height = int(frame[8]) | int(frame[9]&0x3f)<<8
	return width, height, width > 0 && height > 0
}
