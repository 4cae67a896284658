package roster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/store"
)

// ErrStale means a previewed import can no longer be applied: the class
// list changed since (another import), or the preview is unknown or old.
var ErrStale = errors.New("roster: the preview is out of date")

// Actor is who imports: a signed-in IT admin, or the system ("" subject).
type Actor struct {
	Subject, Name, IP string
}

// Importer previews, applies and audits class-list imports.
type Importer struct {
	Store   store.Store
	Options Options
	Now     func() time.Time // nil means time.Now
	Log     *slog.Logger     // nil means discard
}

func (im *Importer) now() time.Time {
	if im.Now == nil {
		return time.Now()
	}
	return im.Now()
}

func (im *Importer) log() *slog.Logger {
	if im.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return im.Log
}

// Preview is a parsed import with what it would change.
type Preview struct {
	Pending store.PendingRoster
	Diff    Diff
}

// Read parses an export's files; an invalid one is audited as refused.
func (im *Importer) Read(ctx context.Context, files map[string][]byte, via Via, by Actor) (store.Roster, Format, error) {
	r, f, err := Parse(files, im.Options)
	if err != nil {
		im.audit(ctx, by, audit.RosterRefused, "", audit.RosterRefusal{Via: string(via), Reason: err.Error()})
	}
	return r, f, err
}

// Refused audits an import refused before parsing (too large, not a zip).
func (im *Importer) Refused(ctx context.Context, via Via, by Actor, err error) {
	im.audit(ctx, by, audit.RosterRefused, "", audit.RosterRefusal{Via: string(via), Reason: err.Error()})
}

// Preview compares r with the applied class list and keeps it, pending,
// for Apply.
func (im *Importer) Preview(ctx context.Context, r store.Roster, f Format, via Via, by Actor) (Preview, error) {
	cur, st, err := im.Store.GetRoster(ctx)
	if err != nil {
		return Preview{}, fmt.Errorf("preview class list: %w", err)
	}
	p := store.PendingRoster{ID: newID(), Created: im.now(), CreatedBy: by.Subject, BaseHash: st.Hash, Source: string(f), Hash: Hash(r), Roster: r}
	if err := im.Store.SavePendingRoster(ctx, p); err != nil {
		return Preview{}, fmt.Errorf("preview class list: %w", err)
	}
	d := Compare(cur, r)
	im.audit(ctx, by, audit.RosterPreviewed, p.ID, detailOf(d, via, f, p.Hash, p.ID))
	return Preview{Pending: p, Diff: d}, nil
}

// GetPreview returns a pending import with its diff against the applied
// list (ErrStale when it is unknown, or the list changed since).
func (im *Importer) GetPreview(ctx context.Context, id string) (Preview, error) {
	p, err := im.Store.GetPendingRoster(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Preview{}, ErrStale
	}
	if err != nil {
		return Preview{}, fmt.Errorf("load class-list preview: %w", err)
	}
	cur, st, err := im.Store.GetRoster(ctx)
	if err != nil {
		return Preview{}, fmt.Errorf("load class-list preview: %w", err)
	}
	if st.Hash != p.BaseHash {
		return Preview{}, ErrStale
	}
	return Preview{Pending: p, Diff: Compare(cur, p.Roster)}, nil
}

// Apply applies a previewed import, provided the class list has not
// changed since the preview.
func (im *Importer) Apply(ctx context.Context, id string, via Via, by Actor) (Diff, error) {
	pv, err := im.GetPreview(ctx, id)
	if err != nil {
		return Diff{}, err
	}
	p := pv.Pending
	err = im.Store.ReplaceRoster(ctx, p.Roster, p.BaseHash, store.RosterState{Hash: p.Hash, Source: p.Source, ImportedAt: im.now(), ImportedBy: by.Name})
	if errors.Is(err, store.ErrConflict) {
		return Diff{}, ErrStale
	}
	if err != nil {
		return Diff{}, fmt.Errorf("apply class list: %w", err)
	}
	if err := im.Store.DeletePendingRoster(ctx, id); err != nil {
		im.log().Warn("delete applied class-list preview", slog.Any("err", err))
	}
	im.audit(ctx, by, audit.RosterImported, p.ID, detailOf(pv.Diff, via, Format(p.Source), p.Hash, p.ID))
	im.log().Info("class list imported", slog.String("via", string(via)), slog.Int("classes", pv.Diff.ClassesAfter), slog.Int("pupils", pv.Diff.PupilsAfter))
	return pv.Diff, nil
}

// Import reads, previews and applies in one step (the command line and the
// watched directory). An import identical to the applied list changes
// nothing and is not audited again.
func (im *Importer) Import(ctx context.Context, files map[string][]byte, via Via, by Actor) (Diff, bool, error) {
	r, f, err := im.Read(ctx, files, via, by)
	if err != nil {
		return Diff{}, false, err
	}
	_, st, err := im.Store.GetRoster(ctx)
	if err != nil {
		return Diff{}, false, fmt.Errorf("import class list: %w", err)
	}
	if st.Hash == Hash(r) {
		return Diff{}, false, nil
	}
	pv, err := im.Preview(ctx, r, f, via, by)
	if err != nil {
		return Diff{}, false, err
	}
	d, err := im.Apply(ctx, pv.Pending.ID, via, by)
	return d, err == nil, err
}

// Watch imports the export in dir at once and then every interval, when
// its files changed, until ctx ends. A bad export is logged and audited
// once; the applied list stays.
func (im *Importer) Watch(ctx context.Context, dir string, every time.Duration) {
	by := Actor{Name: "chaperone (" + string(ViaDirectory) + ")"}
	seen := ""
	for {
		files, err := ReadPath(dir)
		switch {
		case err != nil:
			if msg := "error: " + err.Error(); msg != seen {
				seen = msg
				im.log().Error("class list from roster_dir not read", slog.String("dir", dir), slog.Any("err", err))
				im.Refused(ctx, ViaDirectory, by, err)
			}
		case len(files) == 0:
		case filesHash(files) != seen:
			seen = filesHash(files)
			d, changed, err := im.Import(ctx, files, ViaDirectory, by)
			if err != nil {
				im.log().Error("class list from roster_dir not imported", slog.String("dir", dir), slog.Any("err", err))
			} else if changed {
				im.log().Info("class list from roster_dir applied", slog.String("dir", dir), slog.Int("classes_added", len(d.Added)),
					slog.Int("classes_removed", len(d.Removed)), slog.Int("pupils_joined", d.Joined()), slog.Int("pupils_left", d.Left()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func filesHash(files map[string][]byte) string {
	names := slices.Sorted(maps.Keys(files))
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func detailOf(d Diff, via Via, f Format, hash, pending string) audit.RosterImport {
	return audit.RosterImport{Via: string(via), Format: string(f), Hash: hash, Pending: pending, Classes: d.ClassesAfter, Pupils: d.PupilsAfter,
		ClassesAdded: len(d.Added), ClassesRemoved: len(d.Removed), ClassesRenamed: len(d.Renamed), PupilsJoined: d.Joined(), PupilsLeft: d.Left()}
}

func (im *Importer) audit(ctx context.Context, by Actor, a audit.Action, target string, d audit.Detail) {
	if _, err := im.Store.AppendAudit(ctx, store.AuditEntry{Time: im.now(), ActorSub: by.Subject, ActorName: by.Name, Action: a, Target: target, Detail: audit.Encode(d), RemoteIP: by.IP}); err != nil {
		im.log().Error("audit append failed", slog.String("action", string(a)), slog.Any("err", err))
	}
}

func newID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Memberships gives a signed-in pupil the roster groups of the imported
// classes they are in (auth.MembershipSource).
type Memberships struct{ Store store.Rosters }

// GroupsOf returns "class:<id>" for each class email is a pupil in.
func (m Memberships) GroupsOf(ctx context.Context, email string) ([]string, error) {
	ids, err := m.Store.RosterClassesOf(ctx, email)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = Group(id)
	}
	return out, nil
}
