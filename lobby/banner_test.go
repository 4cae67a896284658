package lobby

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBannerWords: a pupil is told where they are in words for a child:
// no "media", no "session", no cause meant for staff (a failed recording's
// reason), and a deny or removal reason is not in the sentence (the state
// message carries it once, for the page to show). Staff keep the details
// they act on.
func TestBannerWords(t *testing.T) {
	t.Parallel()
	pupil := Participant{Role: Pupil, State: Admitted, NoticeAcked: true}
	staff := Participant{Role: Staff, State: Admitted}
	why := RoomState{RecordingWhy: "Recording stopped: the server's disk is full. Media is paused."}
	cases := []struct {
		name      string
		p         Participant
		s         RoomState
		hold      string
		want      string
		forbidden []string
	}{
		{"no staff", pupil, RoomState{}, HoldNoStaff, "Your teacher is not here at the moment", nil},
		{"recording starts", pupil, RoomState{}, HoldRecStarting, "Getting the lesson ready", nil},
		{"recording failed", pupil, why, HoldRecFailed, "The lesson is paused for a moment", []string{"disk", "Recording"}},
		{"staff: recording failed", staff, why, HoldRecFailed, "the server's disk is full", nil},
		{"class waiting", pupil, RoomState{}, HoldClassWaiting, "More of your class are joining", nil},
		{"denied", Participant{Role: Pupil, State: Denied, Reason: "Wrong class"}, RoomState{}, "", "Your teacher has not let you in", []string{"Wrong class"}},
		{"removed", Participant{Role: Pupil, State: Removed, Reason: "Unkind words"}, RoomState{}, "", "Your teacher has taken you out of this lesson", []string{"Unkind words"}},
		{"ended", pupil, RoomState{Ended: true}, "", "The lesson has ended.", nil},
		{"staff removed", Participant{Role: Staff, State: Removed, Reason: "x"}, RoomState{}, "", "cannot rejoin", nil},
	}
	for _, c := range cases {
		got := Banner(c.p, c.s, Decision{Hold: c.hold})
		require.Contains(t, got, c.want, c.name)
		for _, f := range c.forbidden {
			require.NotContains(t, got, f, c.name)
		}
		if c.p.Role == Pupil {
			for _, jargon := range []string{"Media", "media", "session"} {
				require.False(t, strings.Contains(got, jargon), "%s: %q says %q", c.name, got, jargon)
			}
		}
	}
}
