package web

// Exported for the external tests.
var DecodeMsg = decodeMsg
