package web

// Exported for the external tests.
var DecodeMsg = decodeMsg

// SecurityHeaders is the header middleware, for the HSTS test.
var SecurityHeaders = securityHeaders

// RealIP is the trusted-proxy middleware, for its test.
var RealIP = realIP
