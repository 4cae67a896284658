package roster_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/roster"
	"github.com/chaperone-edu/chaperone/store"
)

var opts = roster.Options{AllowedDomains: []string{"oakfield.example"}}

func TestParseOneRosterAndSDS(t *testing.T) {
	t.Parallel()
	cl := testkit.NewClassList(300, 20, "oakfield.example")
	for name, files := range map[string]map[string][]byte{"oneroster": cl.OneRoster(), "sds": cl.SDS()} {
		t.Run(name, func(t *testing.T) {
			r, f, err := roster.Parse(files, opts)
			require.NoError(t, err)
			if name == "sds" {
				require.Equal(t, roster.FormatSDS, f)
			} else {
				require.Equal(t, roster.FormatOneRoster, f)
			}
			require.Len(t, r.Classes, 20)
			pupils := 0
			for _, e := range r.Enrollments {
				if e.Role == store.RosterPupil {
					pupils++
				}
			}
			require.Equal(t, 300, pupils)
			require.Len(t, r.Enrollments, 320, "and a teacher a class")
		})
	}
	// The same list in both formats has the same pupils in the same classes.
	a, _, _ := roster.Parse(cl.OneRoster(), opts)
	b, _, _ := roster.Parse(cl.SDS(), opts)
	d := roster.Compare(a, b)
	require.Empty(t, d.Changed)
	require.Empty(t, d.Added)
}

// TestParseRefusesMalformed: every malformed export is refused with an
// error naming the file, line or column.
func TestParseRefusesMalformed(t *testing.T) {
	t.Parallel()
	cl := testkit.NewClassList(30, 3, "oakfield.example")
	edit := func(name string, f func(string) string) map[string][]byte {
		files := cl.OneRoster()
		files[name] = []byte(f(string(files[name])))
		return files
	}
	cases := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"missing column", edit("users.csv", func(s string) string { return strings.Replace(s, ",email,", ",mail,", 1) }), "users.csv has no column email"},
		{"missing file", func() map[string][]byte { f := cl.OneRoster(); delete(f, "enrollments.csv"); return f }(), "needs users.csv, classes.csv and enrollments.csv"},
		{"latin-1", edit("users.csv", func(s string) string { return strings.Replace(s, "Pupil,", "Zo\xeb,", 1) }), "users.csv is not UTF-8 text (line 2)"},
		{"short row", edit("classes.csv", func(s string) string { return s + "cls-99,active\n" }), "classes.csv line 5 has 2 columns"},
		{"unknown class", edit("enrollments.csv", func(s string) string { return s + "e1,active,,cls-99,sch-1,stu-0001,student,false,,\n" }), `there is no class "cls-99"`},
		{"unknown pupil", edit("enrollments.csv", func(s string) string { return s + "e1,active,,cls-01,sch-1,stu-9999,student,false,,\n" }), `there is no person "stu-9999"`},
		{"duplicate user", edit("users.csv", func(s string) string {
			return s + "stu-0001,active,,true,x,,Amelia,Jones,,,a.jones@oakfield.example,,,,07,\n"
		}), `the ID "stu-0001" is used twice`},
		{"pupil off-domain", edit("users.csv", func(s string) string { return strings.Replace(s, "pupil0001@oakfield.example", "amelia@gmail.com", 2) }), "not in allowed_domains"},
		{"empty title", edit("classes.csv", func(s string) string { return strings.Replace(s, ",7A Maths,", ",,", 1) }), "classes.csv line 2: title is empty"},
		{"bad quoting", edit("users.csv", func(s string) string { return s + "stu-x,\"active,\n" }), "users.csv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := roster.Parse(tc.files, opts)
			require.ErrorIs(t, err, roster.ErrInvalid)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("50 MB", func(t *testing.T) {
		big := cl.OneRoster()
		big["users.csv"] = append(big["users.csv"], make([]byte, 50<<20)...)
		_, err := roster.ReadZip(testkit.Zip(t, big))
		require.ErrorIs(t, err, roster.ErrTooLarge)
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "export.zip"), make([]byte, 50<<20), 0o600))
		_, err = roster.ReadPath(filepath.Join(dir, "export.zip"))
		require.ErrorIs(t, err, roster.ErrTooLarge)
	})
	t.Run("not a zip", func(t *testing.T) {
		_, err := roster.ReadZip([]byte("sourcedId,title\n"))
		require.ErrorContains(t, err, "not a zip archive")
	})
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "c.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestImporterPreviewApply: import, re-import with changes (diff), apply;
// a stale preview and a bad export change nothing.
func TestImporterPreviewApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	im := &roster.Importer{Store: st, Options: opts, Now: testkit.Now}
	admin := roster.Actor{Subject: "sub-admin", Name: "Tom Briggs", IP: "192.0.2.1"}
	cl := testkit.NewClassList(300, 20, "oakfield.example")
	d, changed, err := im.Import(ctx, cl.OneRoster(), roster.ViaCLI, roster.Actor{Name: "cli"})
	require.NoError(t, err)
	require.True(t, changed)
	require.Len(t, d.Added, 20)
	require.Equal(t, 300, d.PupilsAfter)
	classes, err := st.ListRosterClasses(ctx)
	require.NoError(t, err)
	require.Len(t, classes, 20)
	for _, c := range classes {
		require.Equal(t, 15, c.Pupils, c.Title)
	}
	_, changed, err = im.Import(ctx, cl.OneRoster(), roster.ViaCLI, roster.Actor{Name: "cli"})
	require.NoError(t, err)
	require.False(t, changed, "the same export again changes nothing")

	// Next term: pupil 1 moves from class 1 to class 2, class 20 is dropped,
	// class 1 is renamed, a new class with pupil 3 appears.
	cl.Members[0] = cl.Members[0][1:]
	cl.Members[1] = append(cl.Members[1], 0)
	cl.Members = cl.Members[:19]
	cl.Classes = cl.Classes[:19]
	cl.Classes[0] = "7A Mathematics"
	next := cl.OneRoster()
	next["classes.csv"] = append(next["classes.csv"], []byte("cls-50,active,,Chess Club,07,crs,cc,scheduled,,sch-1,term-1,,,\n")...)
	next["enrollments.csv"] = append(next["enrollments.csv"], []byte("enr-x,active,,cls-50,sch-1,stu-0003,student,false,,\n")...)
	r, f, err := im.Read(ctx, next, roster.ViaPage, admin)
	require.NoError(t, err)
	pv, err := im.Preview(ctx, r, f, roster.ViaPage, admin)
	require.NoError(t, err)
	require.Equal(t, []string{"Chess Club"}, titles(pv.Diff.Added))
	require.Equal(t, []string{"11D Maths"}, titles(pv.Diff.Removed))
	require.Equal(t, []roster.Rename{{ID: "cls-01", From: "7A Maths", To: "7A Mathematics"}}, pv.Diff.Renamed)
	require.Equal(t, 1, pv.Diff.Joined())
	require.Equal(t, 1, pv.Diff.Left())
	require.Equal(t, 300-15, pv.Diff.PupilsAfter, "the dropped class's pupils are in no class now")

	// Nothing changes until applied.
	c1, err := st.GetRosterClass(ctx, "cls-01")
	require.NoError(t, err)
	require.Equal(t, "7A Maths", c1.Title)

	// A bad export meanwhile is refused and changes nothing.
	_, _, err = im.Import(ctx, map[string][]byte{"users.csv": []byte("x")}, roster.ViaCLI, roster.Actor{Name: "cli"})
	require.ErrorIs(t, err, roster.ErrInvalid)

	_, err = im.Apply(ctx, pv.Pending.ID, roster.ViaPage, admin)
	require.NoError(t, err)
	c1, err = st.GetRosterClass(ctx, "cls-01")
	require.NoError(t, err)
	require.Equal(t, "7A Mathematics", c1.Title)
	require.Equal(t, 14, c1.Pupils)
	got, err := st.RosterClassesOf(ctx, "PUPIL0001@oakfield.example")
	require.NoError(t, err)
	require.Equal(t, []string{"cls-02"}, got)
	_, err = st.GetRosterClass(ctx, "cls-20")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Applying twice, or a preview made before another import, is stale.
	_, err = im.Apply(ctx, pv.Pending.ID, roster.ViaPage, admin)
	require.ErrorIs(t, err, roster.ErrStale)
	r2, f2, err := im.Read(ctx, cl.SDS(), roster.ViaPage, admin)
	require.NoError(t, err)
	old, err := im.Preview(ctx, r2, f2, roster.ViaPage, admin)
	require.NoError(t, err)
	_, _, err = im.Import(ctx, testkit.NewClassList(10, 1, "oakfield.example").OneRoster(), roster.ViaCLI, roster.Actor{Name: "cli"})
	require.NoError(t, err)
	_, err = im.Apply(ctx, old.Pending.ID, roster.ViaPage, admin)
	require.ErrorIs(t, err, roster.ErrStale)

	rows, err := st.ListAudit(ctx, store.AuditFilter{Action: audit.FamilyRoster.Prefix()})
	require.NoError(t, err)
	count := map[audit.Action]int{}
	for _, r := range rows {
		count[r.Action]++
	}
	require.Equal(t, map[audit.Action]int{audit.RosterImported: 3, audit.RosterPreviewed: 4, audit.RosterRefused: 1}, count)
	require.NoError(t, st.VerifyAudit(ctx))
}

func titles(cs []store.RosterClass) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Title)
	}
	return out
}

// TestWatchDirectory: the MIS drops an export in roster_dir; it is applied,
// a later change is applied, and a bad one is refused once, keeping the list.
func TestWatchDirectory(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	im := &roster.Importer{Store: st, Options: opts, Now: testkit.Now}
	dir := t.TempDir()
	write := func(files map[string][]byte) {
		for n, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o600))
		}
	}
	count := func() int {
		cs, err := st.ListRosterClasses(ctx)
		require.NoError(t, err)
		return len(cs)
	}
	write(testkit.NewClassList(40, 4, "oakfield.example").OneRoster())
	done := make(chan struct{})
	go func() { im.Watch(ctx, dir, 20*time.Millisecond); close(done) }()
	require.Eventually(t, func() bool { return count() == 4 }, 5*time.Second, 10*time.Millisecond)
	write(testkit.NewClassList(50, 5, "oakfield.example").OneRoster())
	require.Eventually(t, func() bool { return count() == 5 }, 5*time.Second, 10*time.Millisecond)
	write(map[string][]byte{"classes.csv": []byte("sourcedId\ncls-01\n")})
	require.Eventually(t, func() bool {
		rows, err := st.ListAudit(ctx, store.AuditFilter{Action: audit.RosterRefused})
		require.NoError(t, err)
		return len(rows) == 1
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	rows, err := st.ListAudit(ctx, store.AuditFilter{Action: audit.RosterRefused})
	require.NoError(t, err)
	require.Len(t, rows, 1, "refused once, not at every pass")
	require.Contains(t, rows[0].Detail, "classes.csv has no column title")
	require.Equal(t, 5, count())
	cancel()
	<-done
}
