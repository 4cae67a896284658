package audit

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every action constant in audit.go is "<family>.<what>" (or "logout"), and
// no two constants share a name.
func TestActionsAreUniqueAndWellFormed(t *testing.T) {
	src, err := os.ReadFile("audit.go")
	require.NoError(t, err)
	re := regexp.MustCompile(`(?m)^\s+(\w+)\s+Action = "([^"]+)"`)
	seen := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		name, value := m[1], m[2]
		require.Regexp(t, `^([a-z]+\.[a-z_]+|logout)$`, value, name)
		if prev, ok := seen[value]; ok {
			t.Fatalf("%s and %s are both %q", prev, name, value)
		}
		seen[value] = name
	}
	require.Greater(t, len(seen), 60, "the constants were found")
}

func TestFamily(t *testing.T) {
	require.Equal(t, FamilyRoom, RoomAdmit.Family())
	require.Equal(t, FamilyGate, GateHeld.Family())
	require.Equal(t, Action("recording."), FamilyRecording.Prefix())
	require.Equal(t, Family("logout"), Logout.Family())
}

// Each detail encodes as a JSON object with the names readers and older
// rows use, and empty optional fields are left out.
func TestEncode(t *testing.T) {
	onRoster := false
	at := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		d    Detail
		want string
	}{
		{nil, `{}`},
		{None{}, `{}`},
		{Reason{}, `{}`},
		{Reason{Reason: "no staff returned"}, `{"reason":"no staff returned"}`},
		{Join{Role: "pupil", OnRoster: true}, `{"role":"pupil","on_roster":true,"session_staff":false}`},
		{Person{Whom: "Amelia Jones", OnRoster: &onRoster}, `{"whom":"Amelia Jones","on_roster":false}`},
		{Person{Whom: "Amelia Jones", Reason: "shouting"}, `{"whom":"Amelia Jones","reason":"shouting"}`},
		{Rejoin{}, `{}`},
		{Rejoin{AwaySince: at}, `{"away_since":"2026-03-03T09:00:00Z"}`},
		{Gate{Reason: "one-to-one: waiting for the recording", Pupils: 1, Staff: 1}, `{"reason":"one-to-one: waiting for the recording","pupils":1,"staff":1}`},
		{Chat{Role: "pupil", SHA256: "ab"}, `{"role":"pupil","sha256":"ab"}`},
		{RosterRefusal{Via: "admin page", Reason: "users.csv has no column email"}, `{"via":"admin page","reason":"users.csv has no column email"}`},
		{RosterImport{Via: "command line", Format: "oneroster-1.2", Hash: "h", Classes: 20, Pupils: 300, ClassesAdded: 20},
			`{"via":"command line","format":"oneroster-1.2","hash":"h","classes":20,"pupils":300,"classes_added":20,"classes_removed":0,"classes_renamed":0,"pupils_joined":0,"pupils_left":0}`},
	} {
		got := Encode(c.d)
		require.JSONEq(t, c.want, got)
		require.True(t, json.Valid([]byte(got)))
		if c.d != nil {
			require.False(t, strings.Contains(got, "typed"), "the marker is not encoded: %s", got)
		}
	}
}

func TestReadAndDecode(t *testing.T) {
	f := Read(Encode(Person{Whom: "Amelia Jones", Reason: "shouting"}))
	require.Equal(t, "Amelia Jones", f.Whom)
	require.Equal(t, "shouting", f.Reason)
	require.Nil(t, f.OnRoster)

	j := Read(Encode(Join{Role: "pupil"}))
	require.Equal(t, "pupil", j.Role)
	require.NotNil(t, j.OnRoster)
	require.False(t, *j.OnRoster)

	require.Equal(t, Fields{}, Read("not json"), "a detail that is not JSON reads as nothing")
	require.Equal(t, []string{"p1", "p2"}, Decode[Notified](Encode(Notified{Recipients: []string{"dsl@x"}, Pupils: []string{"p1", "p2"}})).Pupils)
	require.Empty(t, Decode[Notified](`{"pupils":`).Pupils)
}
