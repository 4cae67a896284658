package notify

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseYearLeads(t *testing.T) {
	t.Parallel()
	got, err := ParseYearLeads(" year-8 = P.Sharma@oakfield.example, year-9=d.hughes@oakfield.example ,")
	require.NoError(t, err)
	require.Equal(t, YearLeads{"year-8": "p.sharma@oakfield.example", "year-9": "d.hughes@oakfield.example"}, got)
	empty, err := ParseYearLeads("")
	require.NoError(t, err)
	require.Empty(t, empty)
	for _, bad := range []string{
		"year-8",
		"=a@b.example",
		"year-8=",
		"year-8=not-an-address",
		"year-8=Priya <p@b.example>",
		"year-8=a@b.example,year-8=c@d.example",
	} {
		_, err := ParseYearLeads(bad)
		require.Error(t, err, bad)
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	leads := YearLeads{"year-8": "p.sharma@oakfield.example", "year-9": "d.hughes@oakfield.example"}
	dsls := []Recipient{{Email: "H.Murray@oakfield.example", Name: "Helen Murray"}, {Email: "deputy@oakfield.example"}}
	for name, tc := range map[string]struct {
		groups []string
		want   []string
	}{
		"year 8 pupil":        {[]string{"pupils", "year-8"}, []string{"h.murray@oakfield.example", "deputy@oakfield.example", "p.sharma@oakfield.example"}},
		"pupils of two years": {[]string{"year-9", "pupils", "year-8"}, []string{"h.murray@oakfield.example", "deputy@oakfield.example", "p.sharma@oakfield.example", "d.hughes@oakfield.example"}},
		"no year group":       {[]string{"pupils"}, []string{"h.murray@oakfield.example", "deputy@oakfield.example"}},
		"nobody identified":   {nil, []string{"h.murray@oakfield.example", "deputy@oakfield.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, r := range Route(dsls, leads, tc.groups) {
				got = append(got, r.Email)
			}
			require.Equal(t, tc.want, got)
		})
	}
	// A DSL who is also a year lead is told once, as the DSL.
	rs := Route([]Recipient{{Email: "p.sharma@oakfield.example"}}, leads, []string{"year-8"})
	require.Equal(t, []Recipient{{Email: "p.sharma@oakfield.example", Reason: ReasonDSL}}, rs)
	require.Equal(t, "year lead (year-8)", Route(nil, leads, []string{"year-8"})[0].Reason)
}

func FuzzParseYearLeads(f *testing.F) {
	f.Add("year-8=p.sharma@oakfield.example,year-9=d.hughes@oakfield.example")
	f.Add("=,==,a=b")
	f.Fuzz(func(t *testing.T, s string) {
		leads, err := ParseYearLeads(s)
		if err != nil {
			return
		}
		for g, email := range leads {
			if g == "" || email == "" || strings.ContainsAny(g, ",=") || strings.ContainsAny(email, ", ") {
				t.Fatalf("accepted %q → %q=%q", s, g, email)
			}
		}
	})
}

func TestParseEmails(t *testing.T) {
	t.Parallel()
	got, err := ParseEmails(" H.Murray@oakfield.example, safeguarding@oakfield.example,,h.murray@oakfield.example ")
	require.NoError(t, err)
	require.Equal(t, []string{"h.murray@oakfield.example", "safeguarding@oakfield.example"}, got)
	none, err := ParseEmails("")
	require.NoError(t, err)
	require.Empty(t, none)
	for _, bad := range []string{"h.murray", "Helen <h.murray@oakfield.example>", "a@b.example;c@d.example"} {
		_, err := ParseEmails(bad)
		require.Error(t, err, bad)
	}
}
