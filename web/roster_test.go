package web_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/roster"
	"github.com/chaperone-edu/chaperone/store"
)

// upload posts files to the class-list upload form as a browser does and
// returns the status, the final URL and the page.
func upload(t *testing.T, a *testkit.APIClient, csrf string, files map[string][]byte) (int, string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if csrf != "" {
		require.NoError(t, mw.WriteField("csrf_token", csrf))
	}
	for name, b := range files {
		fw, err := mw.CreateFormFile("file", name)
		require.NoError(t, err)
		_, err = fw.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	req, err := http.NewRequest(http.MethodPost, a.Base+"/admin/roster/preview", &buf)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := a.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Request.URL.Path, html.UnescapeString(string(body))
}

func applyForm(t *testing.T, a *testkit.APIClient, path string) (int, string, string) {
	t.Helper()
	resp, err := a.HTTP.PostForm(a.Base+path, url.Values{"csrf_token": {a.CSRF}})
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Request.URL.Path, html.UnescapeString(string(body))
}

func rosterClasses(t *testing.T, sc *school) map[string]int {
	t.Helper()
	cs, err := sc.gw.Store.ListRosterClasses(context.Background())
	require.NoError(t, err)
	out := map[string]int{}
	for _, c := range cs {
		out[c.Title] = c.Pupils
	}
	return out
}

// TestClassListImport: the IT admin imports a OneRoster export of 300
// pupils in 20 classes (upload → preview → apply); a teacher requests a
// session for a class; the approver sees the class and its real size; the
// lobby marks pupils on and off the list from it; a re-import with changes
// shows the diff and applies it; malformed uploads change nothing.
func TestClassListImport(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "itadmin", "pupil", "pupil2", "pupil3")
	admin := sc.people["itadmin"]
	cl := testkit.NewClassList(300, 20, "oakfield.example")
	// Amelia and Zoë (demo pupils) are in class 1 (7A Maths); Oliver is in no class.
	cl.Pupils[0].Email, cl.Pupils[0].Given, cl.Pupils[0].Family = "amelia.jones@oakfield.example", "Amelia", "Jones"
	cl.Pupils[20].Email, cl.Pupils[20].Given, cl.Pupils[20].Family = "zoe.lefevre@oakfield.example", "Zoë", "Lefèvre"

	status, _ := get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/admin/roster")
	require.Equal(t, http.StatusForbidden, status, "only IT admins import class lists")
	status, _, _ = upload(t, admin, "", map[string][]byte{"export.zip": testkit.Zip(t, cl.OneRoster())})
	require.Equal(t, http.StatusForbidden, status, "an upload without the CSRF token is refused")

	status, path, page := upload(t, admin, admin.CSRF, map[string][]byte{"oneroster.zip": testkit.Zip(t, cl.OneRoster())})
	require.Equal(t, http.StatusOK, status, page)
	require.True(t, strings.HasPrefix(path, "/admin/roster/preview/"), path)
	require.Contains(t, page, "<strong>20 classes</strong> and <strong>300 pupils</strong>")
	require.Contains(t, page, `Classes added: <span id="added">20</span>`)
	require.Empty(t, rosterClasses(t, sc), "nothing changes before apply")
	status, final, page := applyForm(t, admin, path+"/apply")
	require.Equal(t, http.StatusOK, status, page)
	require.Equal(t, "/admin/roster", final)
	require.Contains(t, page, "The class list was imported.")
	require.Contains(t, page, "20 classes, imported")
	counts := rosterClasses(t, sc)
	require.Len(t, counts, 20)
	require.Equal(t, 15, counts["7A Maths"])

	// The request form offers the classes; a class that does not exist is refused.
	_, form := get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/sessions/new")
	require.Contains(t, html.UnescapeString(form), `<option value="class:cls-01">7A Maths (15 pupils)</option>`)
	status, out := sc.people["teacher"].Call(http.MethodPost, "/api/sessions", sessionBody("Maths catch-up", schoolDay.Add(2*time.Hour), map[string]any{"roster_group": "class:cls-99"}))
	require.Equal(t, http.StatusBadRequest, status, "%v", out)

	// The approver sees the class's title and real size.
	id := sc.request(t, "teacher", map[string]any{"roster_group": roster.Group("cls-01")})
	_, appr := get(t, sc.people["head"].HTTP, sc.gw.URL+"/approvals")
	appr = html.UnescapeString(appr)
	require.Regexp(t, regexp.MustCompile(`(?s)data-session="`+id+`".*<td class="class">7A Maths<br><span class="hint">15 pupils on the class list`), appr)

	// The lobby marks on-list and off-list pupils from the imported list.
	status, out = sc.people["head"].Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	sc.clock.Set(schoolDay.Add(2*time.Hour - 10*time.Minute))
	status, out = sc.people["teacher"].Call(http.MethodPost, "/api/sessions/"+id+"/open", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	_, roomPage := get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/rooms/"+id)
	require.Contains(t, html.UnescapeString(roomPage), `<p id="room-class" class="room-when">Class: 7A Maths, 15 pupils on the class list.</p>`)
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	for _, u := range []string{"pupil", "pupil2", "pupil3"} {
		rc, _, err := testkit.DialRoom(t, sc.people[u], id, "")
		require.NoError(t, err)
		rc.WaitState(map[string]any{"phase": "waiting"})
	}
	lobbyMsg := teacher.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "lobby" && len(m["waiting"].([]any)) == 3 })
	onList := map[string]bool{}
	for _, w := range lobbyMsg["waiting"].([]any) {
		w := w.(map[string]any)
		onList[w["name"].(string)] = w["on_roster"].(bool)
	}
	require.Equal(t, map[string]bool{"Amelia Jones": true, "Zoë Lefèvre": true, "Oliver Smith-Baker": false}, onList)

	// Next term's export: Zoë (Members[0][1]) moves to 8A, 11D Maths is
	// dropped, a new class appears.
	cl.Members[0] = append([]int{0}, cl.Members[0][2:]...)
	cl.Members[1] = append(cl.Members[1], 20)
	cl.Members, cl.Classes = cl.Members[:19], cl.Classes[:19]
	next := cl.OneRoster()
	next["classes.csv"] = append(next["classes.csv"], []byte("cls-50,active,,Chess Club,07,crs,cc,scheduled,,sch-1,term-1,,,\n")...)
	status, path, page = upload(t, admin, admin.CSRF, map[string][]byte{"export.zip": testkit.Zip(t, next)})
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, page, `Classes added: <span id="added">1</span>`)
	require.Contains(t, page, `Classes removed: <span id="removed">1</span>`)
	require.Contains(t, page, `joining classes: <span id="joined">1</span>; leaving classes: <span id="left">1</span>`)
	require.Contains(t, page, "Chess Club")
	require.Contains(t, page, "11D Maths")
	require.Contains(t, page, `<span class="left">− Zoë Lefèvre</span>`)
	require.Contains(t, page, `<span class="joined">+ Zoë Lefèvre</span>`)
	status, _, page = applyForm(t, admin, path+"/apply")
	require.Equal(t, http.StatusOK, status, page)
	counts = rosterClasses(t, sc)
	require.Equal(t, 14, counts["7A Maths"])
	require.Equal(t, 16, counts["8A Maths"])
	require.NotContains(t, counts, "11D Maths")
	_, sess := get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/sessions/"+id)
	require.Contains(t, html.UnescapeString(sess), `<span class="class">7A Maths</span> (14 pupils on the class list)`)
	status, _, page = applyForm(t, admin, path+"/apply")
	require.Equal(t, http.StatusConflict, status, "a preview applies once")
	require.Contains(t, page, "out of date")

	// Malformed uploads are refused with a clear error, and nothing changes.
	before := rosterClasses(t, sc)
	bad := cl.OneRoster()
	bad["users.csv"] = []byte(strings.Replace(string(bad["users.csv"]), ",email,", ",mail,", 1))
	latin := cl.OneRoster()
	latin["users.csv"] = []byte(strings.Replace(string(latin["users.csv"]), "Zoë", "Zo\xeb", 1))
	for name, tc := range map[string]struct {
		files  map[string][]byte
		status int
		want   string
	}{
		"missing column": {map[string][]byte{"export.zip": testkit.Zip(t, bad)}, http.StatusBadRequest, "users.csv has no column email"},
		"bad encoding":   {latin, http.StatusBadRequest, "users.csv is not UTF-8 text"},
		"50 MB":          {map[string][]byte{"export.zip": make([]byte, 50<<20)}, http.StatusRequestEntityTooLarge, "larger than 32 MB"},
		"not an export":  {map[string][]byte{"photo.png": []byte("\x89PNG")}, http.StatusBadRequest, "neither a .zip archive nor a .csv file"},
	} {
		t.Run(name, func(t *testing.T) {
			status, _, page := upload(t, admin, admin.CSRF, tc.files)
			require.Equal(t, tc.status, status, page)
			require.Contains(t, page, tc.want)
			require.Contains(t, page, "Nothing was changed")
		})
	}
	require.Equal(t, before, rosterClasses(t, sc))
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: audit.FamilyRoster.Prefix()})
	require.NoError(t, err)
	n := map[audit.Action]int{}
	for _, r := range rows {
		n[r.Action]++
	}
	require.Equal(t, 2, n[audit.RosterImported])
	require.Equal(t, 3, n[audit.RosterRefused], "refusals that reach the handler are audited")
	require.NoError(t, sc.gw.Store.VerifyAudit(context.Background()))
}

// TestClassListImportSDS: the School Data Sync CSV files, uploaded
// together without a zip.
func TestClassListImportSDS(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "itadmin")
	admin := sc.people["itadmin"]
	files := testkit.NewClassList(60, 4, "oakfield.example").SDS()
	upl := map[string][]byte{}
	for n, b := range files {
		upl[strings.Replace(strings.Replace(n, "section", "Section", 1), "student", "Student", 1)] = b
	}
	status, path, page := upload(t, admin, admin.CSRF, upl)
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, page, "sds-csv export has <strong>4 classes</strong> and <strong>60 pupils</strong>")
	status, _, page = applyForm(t, admin, path+"/apply")
	require.Equal(t, http.StatusOK, status, page)
	require.Len(t, rosterClasses(t, sc), 4)
}

// TestClassListLookalike: a pupil whose name looks like that of a pupil on
// the imported class list is flagged in the lobby, as for an IdP group.
func TestClassListLookalike(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, ExtraUsers: []demoidp.User{{
		Username: "lookalike", Sub: "3f1c9a52-imp-0002", GivenName: "AmeIia", FamilyName: "Jones",
		Email: "a.jones@oakfield.example", EmailVerified: true, Groups: []string{"pupils", "year-9"},
	}}})
	cl := testkit.NewClassList(30, 2, "oakfield.example")
	cl.Pupils[0].Email = "amelia.jones@oakfield.example"
	im := &roster.Importer{Store: gw.Store, Now: clock.Now}
	_, _, err := im.Import(context.Background(), cl.OneRoster(), roster.ViaCLI, roster.Actor{Name: "test"})
	require.NoError(t, err)
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "pupil", "lookalike"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, map[string]any{"roster_group": roster.Group(testkit.ClassID(0))})
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	rc, _, err := testkit.DialRoom(t, sc.people["lookalike"], id, "")
	require.NoError(t, err)
	rc.WaitState(map[string]any{"phase": "waiting"})
	m := teacher.Next(10*time.Second, func(m map[string]any) bool {
		ws, _ := m["waiting"].([]any)
		return m["type"] == "lobby" && len(ws) == 1
	})
	w := m["waiting"].([]any)[0].(map[string]any)
	require.Equal(t, false, w["on_roster"])
	require.Equal(t, "Amelia Jones, amelia.jones@…", w["looks_like"])
}
