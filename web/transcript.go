package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/live"
)

// sessionTranscript reads a session's chat transcript (R12) from the chat
// table (the audit log holds only each message's hash); package live
// stores it next to the recordings when the session ends.
func (s *Server) sessionTranscript(ctx context.Context, sessionID string) ([]live.TranscriptLine, error) {
	ms, err := s.store.ListChatMessages(ctx, sessionID)
	if err != nil {
		return nil, fmt.Errorf("chat transcript of %s: %w", sessionID, err)
	}
	return live.Transcript(ms), nil
}

// transcriptDownload is GET /recordings/{id}/chat.csv: the session's chat
// transcript for the DSL, audited before any byte is sent.
func (s *Server) transcriptDownload(w http.ResponseWriter, r *http.Request) {
	who, err := s.requireDSL(r)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	ss, _, err := s.recordedSession(ctx, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if !s.requireFresh(w, r, r.URL.RequestURI()) { // a download, like the recordings
		return
	}
	lines, err := s.sessionTranscript(ctx, ss.ID)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if err := s.auditOrErr(ctx, who, audit.ChatTranscriptDownloaded, ss.ID, ss.ID, audit.Transcript{Messages: len(lines)}, auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="chat-%s.csv"`, ss.ID))
	_, _ = w.Write(live.TranscriptCSV(lines, s.loc()))
}
