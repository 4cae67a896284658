package web_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestMetricsNotPublic (issue 18, finding 5): the gateway's own address
// serves no /metrics, to anyone signed in or not (before, pupils included
// could read it); /healthz stays open; /metrics is on its own address
// (metrics_listen), or, with a token, on the gateway's for that bearer only.
func TestMetricsNotPublic(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "pupil", "itadmin")
	for name, c := range map[string]*http.Client{"anonymous": testkit.CookieClient(t), "pupil": sc.people["pupil"].HTTP, "itadmin": sc.people["itadmin"].HTTP} {
		status, _ := get(t, c, sc.gw.URL+"/metrics")
		require.Equal(t, http.StatusNotFound, status, name)
		status, _ = get(t, c, sc.gw.URL+"/healthz")
		require.Equal(t, http.StatusOK, status, name)
	}
	status, body := get(t, testkit.CookieClient(t), sc.gw.MetricsURL)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "chaperone_rooms_live 0")

	const token = "a-metrics-token-of-some-length"
	gw := testkit.StartGateway(t, testkit.GatewayOptions{MetricsToken: token})
	for _, tc := range []struct {
		url, auth string
		want      int
	}{
		{gw.URL + "/metrics", "", http.StatusUnauthorized},
		{gw.URL + "/metrics", "Bearer wrong", http.StatusUnauthorized},
		{gw.URL + "/metrics", token, http.StatusUnauthorized},
		{gw.URL + "/metrics", "Bearer " + token, http.StatusOK},
		{gw.MetricsURL, "", http.StatusUnauthorized},
		{gw.MetricsURL, "Bearer " + token, http.StatusOK},
		{gw.URL + "/healthz", "", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		require.NoError(t, err)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, "%s %q", tc.url, tc.auth)
	}
}
