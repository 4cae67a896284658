package web

import (
	"context"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/store"
)

// Exported for the external tests.
var DecodeMsg = decodeMsg

// SecurityHeaders is the header middleware, for the HSTS test.
var SecurityHeaders = securityHeaders

// RealIP is the trusted-proxy middleware, for its test.
var RealIP = realIP

// RaiseConcernInRoom is the shell of "stop and raise a concern", for the
// concern-spam test (the room refuses a second raise itself once ended).
func (s *Server) RaiseConcernInRoom(who auth.Identity, ss store.Session) {
	s.cfg.Concerns.RaiseInRoom(who, ss)
}

// NotifyConcernCompleted tells of a concern's details again, as posting its
// form does, for the concern-spam test.
func (s *Server) NotifyConcernCompleted(ctx context.Context, who auth.Identity, c store.Concern) {
	s.cfg.Concerns.Notify(ctx, who, c, nil, true)
}
