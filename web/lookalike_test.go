package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestLookalikeNameFlagged (issue 18, finding 3): a pupil whose name passes
// the full-name rule but looks like another pupil's on the class list
// ("AmeIia Jones" with a capital I) is let into the lobby, and staff see
// whom the name looks like before admitting; the real Amelia is not flagged.
func TestLookalikeNameFlagged(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, ExtraUsers: []demoidp.User{{
		Username: "lookalike", Sub: "3f1c9a52-imp-0001", GivenName: "AmeIia", FamilyName: "Jones",
		Email: "a.jones@oakfield.example", EmailVerified: true, Groups: []string{"pupils", "year-9"},
	}}})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "pupil", "lookalike"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, nil) // class list: year-8, Amelia Jones's group
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})

	for _, u := range []string{"lookalike", "pupil"} {
		rc, _, err := testkit.DialRoom(t, sc.people[u], id, "")
		require.NoError(t, err)
		rc.WaitState(map[string]any{"phase": "waiting"})
	}
	waiting := map[string]map[string]any{}
	teacher.Next(10*time.Second, func(m map[string]any) bool {
		if m["type"] != "lobby" {
			return false
		}
		ws, _ := m["waiting"].([]any)
		for _, w := range ws {
			wm := w.(map[string]any)
			waiting[wm["email"].(string)] = wm
		}
		return len(ws) == 2
	})
	require.Len(t, waiting, 2)
	imp := waiting["a.jones@oakfield.example"]
	require.Equal(t, "AmeIia Jones", imp["name"])
	require.Equal(t, false, imp["on_roster"])
	require.Equal(t, "Amelia Jones, amelia.jones@…", imp["looks_like"])
	require.NotContains(t, waiting["amelia.jones@oakfield.example"], "looks_like", "the real Amelia's look-alike is not on the class list")
}

// TestBrowserLookalikeNameShown: the teacher's waiting list shows the
// look-alike warning next to the pupil's name.
func TestBrowserLookalikeNameShown(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, ExtraUsers: []demoidp.User{{
		Username: "lookalike", Sub: "3f1c9a52-imp-0001", GivenName: "AmeIia", FamilyName: "Jones",
		Email: "a.jones@oakfield.example", EmailVerified: true, Groups: []string{"pupils", "year-8"},
	}}})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "pupil"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, nil)
	roomURL := gw.URL + "/rooms/" + id
	teacher := signInBrowser(t, gw, "teacher")
	step(t, teacher, "the teacher opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`)))
	imp := signInBrowser(t, gw, "lookalike")
	step(t, imp, "the look-alike opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	waitLobby(t, teacher, youID(t, imp))
	waitText(t, teacher, "the warning shows", `#lobby-list .looks-like`, "Looks like Amelia Jones, amelia.jones@…: check who this is")
	require.Contains(t, text(t, teacher, `#lobby-list`), "On the class list", "on the class list, and still flagged")
}
