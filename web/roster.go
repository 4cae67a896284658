package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/roster"
	"github.com/chaperone-edu/chaperone/store"
)

// This file holds the IT admin's class-list pages: upload an MIS export,
// preview what it changes, apply it; and the class lists' use elsewhere
// (the classes offered on the request form, their sizes for approvers).

// rosterUploadPath is the one route whose body may exceed maxBody.
const rosterUploadPath = "/admin/roster/preview"

// maxRosterUpload bounds the multipart body of an upload: the export plus
// the form's other fields.
const maxRosterUpload = roster.MaxImportBytes + 64<<10

func mayImportRoster(who auth.Identity) error {
	if who.Has(auth.RoleAdmin) {
		return nil
	}
	return &lobby.Error{Kind: lobby.Forbidden, Message: "Only IT admins can import class lists."}
}

func (s *Server) rosterActor(r *http.Request) roster.Actor {
	who := sessionFrom(r.Context()).Identity
	return roster.Actor{Subject: who.Subject, Name: who.Name, IP: auth.ClientIP(r)}
}

func (s *Server) pageRoster(w http.ResponseWriter, r *http.Request) {
	if err := mayImportRoster(sessionFrom(r.Context()).Identity); err != nil {
		s.failErr(w, r, err)
		return
	}
	msg := map[string]string{"imported": "The class list was imported."}[r.URL.Query().Get("done")]
	s.renderRoster(w, r, http.StatusOK, msg, false)
}

func (s *Server) renderRoster(w http.ResponseWriter, r *http.Request, status int, msg string, isErr bool) {
	classes, err := s.store.ListRosterClasses(r.Context())
	if err != nil {
		s.failErr(w, r, fmt.Errorf("list classes: %w", err))
		return
	}
	_, st, err := s.store.GetRoster(r.Context())
	if err != nil {
		s.failErr(w, r, fmt.Errorf("class list state: %w", err))
		return
	}
	data := map[string]any{"Classes": classes, "State": st, "MaxMB": roster.MaxImportBytes >> 20, "Upload": rosterUploadPath}
	if !st.ImportedAt.IsZero() {
		data["When"] = st.ImportedAt.In(s.loc()).Format("Mon 2 Jan 2006, 15:04")
	}
	s.render(w, r, status, "roster", page{Title: "Class lists", Message: msg, Error: isErr, Data: data})
}

// limitRosterUpload bounds the upload's body (limitBody leaves this route
// alone) and refuses a declared-too-large one before reading it.
func (s *Server) limitRosterUpload(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxRosterUpload {
			s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("The file is larger than %d MB, far larger than a school's class lists: check that it is the class-list export. Nothing was changed.", roster.MaxImportBytes>>20))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRosterUpload)
		next(w, r)
	}
}

// postRosterPreview reads an uploaded export (a zip, or the CSV files) and
// shows what it would change. Nothing changes until it is applied.
func (s *Server) postRosterPreview(w http.ResponseWriter, r *http.Request) {
	if err := mayImportRoster(sessionFrom(r.Context()).Identity); err != nil {
		s.failErr(w, r, err)
		return
	}
	by := s.rosterActor(r)
	files, err := readUpload(r)
	if err != nil {
		s.rosterImporter().Refused(r.Context(), roster.ViaPage, by, err)
		s.renderRoster(w, r, http.StatusBadRequest, err.Error()+" Nothing was changed.", true)
		return
	}
	im := s.rosterImporter()
	rs, f, err := im.Read(r.Context(), files, roster.ViaPage, by)
	if err != nil {
		s.renderRoster(w, r, http.StatusBadRequest, err.Error()+". Nothing was changed.", true)
		return
	}
	pv, err := im.Preview(r.Context(), rs, f, roster.ViaPage, by)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/roster/preview/"+pv.Pending.ID, http.StatusSeeOther)
}

// readUpload returns the CSV files of the upload: one zip archive, or
// several CSV files chosen together.
func readUpload(r *http.Request) (map[string][]byte, error) {
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, roster.ErrTooLarge
		}
		return nil, fmt.Errorf("%w: the upload could not be read (%v)", roster.ErrInvalid, err)
	}
	fhs := r.MultipartForm.File["file"]
	if len(fhs) == 0 {
		return nil, fmt.Errorf("%w: choose the export file (a .zip, or the CSV files)", roster.ErrInvalid)
	}
	files := map[string][]byte{}
	for _, fh := range fhs {
		f, err := fh.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: %s could not be read", roster.ErrInvalid, fh.Filename)
		}
		b, err := io.ReadAll(io.LimitReader(f, roster.MaxImportBytes+1))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %s could not be read", roster.ErrInvalid, fh.Filename)
		}
		name := strings.ToLower(filepath.Base(fh.Filename))
		if strings.HasSuffix(name, ".zip") {
			if len(fhs) > 1 {
				return nil, fmt.Errorf("%w: upload one .zip archive, or the CSV files, not both", roster.ErrInvalid)
			}
			return roster.ReadZip(b)
		}
		if !strings.HasSuffix(name, ".csv") {
			return nil, fmt.Errorf("%w: %s is neither a .zip archive nor a .csv file", roster.ErrInvalid, fh.Filename)
		}
		files[name] = b
	}
	return files, nil
}

func (s *Server) pageRosterPreview(w http.ResponseWriter, r *http.Request) {
	if err := mayImportRoster(sessionFrom(r.Context()).Identity); err != nil {
		s.failErr(w, r, err)
		return
	}
	pv, err := s.rosterImporter().GetPreview(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, rosterErr(err))
		return
	}
	s.render(w, r, http.StatusOK, "roster_preview", page{Title: "Check the class list", Data: map[string]any{"P": pv.Pending, "D": pv.Diff,
		"Joined": pv.Diff.Joined(), "Left": pv.Diff.Left()}})
}

func (s *Server) postRosterApply(w http.ResponseWriter, r *http.Request) {
	s.formAction(func(r *http.Request, who auth.Identity) (string, error) {
		if err := mayImportRoster(who); err != nil {
			return "", err
		}
		if _, err := s.rosterImporter().Apply(r.Context(), r.PathValue("id"), roster.ViaPage, s.rosterActor(r)); err != nil {
			return "", rosterErr(err)
		}
		return "/admin/roster?done=imported", nil
	})(w, r)
}

func rosterErr(err error) error {
	if errors.Is(err, roster.ErrStale) {
		return &lobby.Error{Kind: lobby.Conflict, Message: "This preview is out of date: the class list was imported again since, or the preview was already applied. Upload the export again to see what it changes now."}
	}
	return err
}

func (s *Server) rosterImporter() *roster.Importer {
	return &roster.Importer{Store: s.store, Options: roster.Options{AllowedDomains: s.cfg.Schedule.AllowedDomains}, Now: s.cfg.Now, Log: s.log}
}

// groupOption is a class offered on the request form.
type groupOption struct{ Value, Label string }

// rosterGroupOptions are the configured IdP groups and the imported
// classes, for the request form.
func (s *Server) rosterGroupOptions(ctx context.Context) []groupOption {
	var out []groupOption
	classes, err := s.store.ListRosterClasses(ctx)
	if err != nil {
		s.log.Warn("list classes for the request form", "err", err)
	}
	for _, c := range classes {
		out = append(out, groupOption{Value: roster.Group(c.SourcedID), Label: fmt.Sprintf("%s (%d pupils)", c.Title, c.Pupils)})
	}
	for _, g := range s.cfg.RosterGroups {
		out = append(out, groupOption{Value: g, Label: "school group " + g})
	}
	return out
}

// classTitle is the title of an imported class a roster group names, ""
// for an IdP group or a class no longer imported.
func (s *Server) classTitle(ctx context.Context, group string) string {
	id, ok := roster.ClassID(group)
	if !ok {
		return ""
	}
	c, err := s.store.GetRosterClass(ctx, id)
	if err != nil {
		return ""
	}
	return c.Title
}

// classSize is the number of pupils of the imported class a roster group
// names, and whether it names one.
func (s *Server) classSize(ctx context.Context, group string) (int, bool) {
	id, ok := roster.ClassID(group)
	if !ok {
		return 0, false
	}
	c, err := s.store.GetRosterClass(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return 0, true
	}
	if err != nil {
		s.log.Warn("class size", "class", id, "err", err)
		return 0, true
	}
	return c.Pupils, true
}
