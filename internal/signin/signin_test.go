package signin_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/signin"
	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestLogin signs in through the real demo IdP: a good password gives a
// session with a CSRF token, a bad one an error and no session; API refusals
// come back as *StatusError.
func TestLogin(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	ctx := context.Background()

	c, err := signin.Login(ctx, gw.URL, "teacher", testkit.DemoPassword, "")
	require.NoError(t, err)
	require.NotEmpty(t, c.CSRF)
	require.Equal(t, "Sarah Whitfield", c.Name)
	var me struct {
		Role string `json:"role"`
	}
	require.NoError(t, c.Call(ctx, http.MethodGet, "/api/me", nil, &me))
	require.Equal(t, "teacher", me.Role)

	err = c.Call(ctx, http.MethodPost, "/api/sessions/nosuchsession/approve", nil, nil)
	var se *signin.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.GreaterOrEqual(t, se.Status, 400)

	_, err = signin.Login(ctx, gw.URL, "teacher", "wrong password", "")
	require.Error(t, err)

	status, body, err := signin.Submit(ctx, signin.NewHTTPClient(), gw.URL, "placeholder", testkit.DemoPassword, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, status, body)

	_, _, err = signin.Submit(ctx, signin.NewHTTPClient(), gw.IdPURL, "teacher", testkit.DemoPassword, "")
	require.ErrorIs(t, err, signin.ErrNoLoginForm)
}
