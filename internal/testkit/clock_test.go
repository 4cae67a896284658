package testkit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseClockOffset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"400d", 400 * 24 * time.Hour, false},
		{"-3d", -3 * 24 * time.Hour, false},
		{"9600h", 9600 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"d", 0, true},
		{"four hundred days", 0, true},
		{"1.5d", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseClockOffset(tc.in)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestSchoolDay: a Tuesday at 08:00 London, two to eight days after Now,
// whatever the offset.
func TestSchoolDay(t *testing.T) {
	t.Parallel()
	d := SchoolDay()
	require.Equal(t, time.Tuesday, d.Weekday())
	require.Equal(t, 8, d.In(London).Hour())
	require.Zero(t, d.In(London).Minute())
	ahead := d.Sub(Now())
	require.Greater(t, ahead, 24*time.Hour, "at least a day ahead")
	require.Less(t, ahead, 9*24*time.Hour, "within about a week")
	require.Equal(t, d.In(London).Format(time.DateOnly), Day(d))
}
