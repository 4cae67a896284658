// Package signin is an HTTP client for the gateway that signs in the way a
// browser does: it follows /login to the identity provider's login form,
// posts the username and password, follows the redirects back to
// /auth/callback and keeps the session cookie. It then calls the JSON API
// with the CSRF token and opens room WebSockets. The load generator and the
// tests share it; it works with the demo IdP's form (auth/demoidp).
package signin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"time"

	"github.com/gorilla/websocket"
)

// ErrNoLoginForm means the gateway's /login did not lead to a login form.
var ErrNoLoginForm = errors.New("signin: no login form")

// NewHTTPClient returns an HTTP client with its own cookie jar that follows
// redirects (up to Go's default of 10) and gives up after 15 seconds.
func NewHTTPClient() *http.Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &http.Client{
		Jar:       jar,
		Timeout:   15 * time.Second,
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}
}

var (
	hiddenID   = regexp.MustCompile(`name="id" value="([^"]*)"`)
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
)

// Submit signs in through the gateway and the demo IdP's login form with c,
// following every redirect, and returns the final response's status and
// body: the gateway's home page when sign-in worked, a refusal page or the
// IdP's form with an error when it did not. An error means the exchange
// itself failed.
func Submit(ctx context.Context, c *http.Client, gatewayURL, username, password, otp string) (int, string, error) {
	return SubmitAt(ctx, c, gatewayURL+"/login", username, password, otp)
}

// SubmitAt is Submit starting from startURL: any gateway address that leads
// to the IdP's login form (e.g. a fresh sign-in a recording page asked for).
func SubmitAt(ctx context.Context, c *http.Client, startURL, username, password, otp string) (int, string, error) {
	status, body, final, err := get(ctx, c, startURL)
	if err != nil {
		return 0, "", fmt.Errorf("signin: start: %w", err)
	}
	id := hiddenID.FindStringSubmatch(body)
	action := formAction.FindStringSubmatch(body)
	if id == nil || action == nil {
		return status, body, fmt.Errorf("%w at %s (status %d)", ErrNoLoginForm, final, status)
	}
	target, err := final.Parse(html.UnescapeString(action[1]))
	if err != nil {
		return 0, "", fmt.Errorf("signin: form action: %w", err)
	}
	form := url.Values{"id": {html.UnescapeString(id[1])}, "username": {username}, "password": {password}, "otp": {otp}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewBufferString(form.Encode()))
	if err != nil {
		return 0, "", fmt.Errorf("signin: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("signin: submit login form: %w", err)
	}
	b, err := readAll(resp)
	return resp.StatusCode, string(b), err
}

func get(ctx context.Context, c *http.Client, u string) (int, string, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	b, err := readAll(resp)
	return resp.StatusCode, string(b), resp.Request.URL, err
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("signin: read reply: %w", err)
	}
	return b, nil
}

// Client is a person signed in to the gateway.
type Client struct {
	HTTP *http.Client
	Base string // the gateway's URL
	CSRF string // the session's CSRF token, from /api/me
	Name string // the verified full name, from /api/me
}

// Login signs in as username with a new cookie jar and fetches the CSRF
// token and name from /api/me.
func Login(ctx context.Context, gatewayURL, username, password, otp string) (*Client, error) {
	c := &Client{HTTP: NewHTTPClient(), Base: gatewayURL}
	status, body, err := Submit(ctx, c.HTTP, gatewayURL, username, password, otp)
	if err != nil {
		return nil, fmt.Errorf("sign in as %s: %w", username, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("sign in as %s: status %d: %.200s", username, status, body)
	}
	var me struct {
		CSRF string `json:"csrf_token"`
		Name string `json:"name"`
	}
	if err := c.Call(ctx, http.MethodGet, "/api/me", nil, &me); err != nil {
		return nil, fmt.Errorf("sign in as %s: %w", username, err)
	}
	c.CSRF, c.Name = me.CSRF, me.Name
	return c, nil
}

// Do sends a request to the gateway with the given CSRF token ("" for none)
// and a JSON body (when body is not nil; a []byte or string is sent as is),
// and returns the status and body.
func Do(ctx context.Context, c *http.Client, base, method, path string, body any, csrf string) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	raw, err := readAll(resp)
	return resp.StatusCode, raw, err
}

// StatusError is a JSON API reply with a status other than 2xx.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %.300s", e.Method, e.Path, e.Status, e.Body)
}

// Call sends a JSON API request with the CSRF token and decodes a 2xx reply
// into out (when not nil). Any other status is a *StatusError.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	status, raw, err := Do(ctx, c.HTTP, c.Base, method, path, body, c.CSRF)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return &StatusError{Method: method, Path: path, Status: status, Body: string(raw)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: reply is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}

// DialRoom opens the signalling WebSocket of a live session with the
// client's cookies and the given Origin ("" = the gateway's own). It returns
// the HTTP response on a refused upgrade.
func DialRoom(ctx context.Context, c *http.Client, base, sessionID, origin string) (*websocket.Conn, *http.Response, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway URL: %w", err)
	}
	if origin == "" {
		origin = base
	}
	scheme := "ws"
	if u.Scheme == "https" {
		scheme = "wss"
	}
	d := websocket.Dialer{Jar: c.Jar, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, scheme+"://"+u.Host+"/ws/rooms/"+url.PathEscape(sessionID), http.Header{"Origin": {origin}})
	if err != nil {
		return nil, resp, fmt.Errorf("open room %s: %w", sessionID, err)
	}
	return ws, resp, nil
}

// DialRoom opens a live session's signalling WebSocket as this person.
func (c *Client) DialRoom(ctx context.Context, sessionID string) (*websocket.Conn, error) {
	ws, _, err := DialRoom(ctx, c.HTTP, c.Base, sessionID, "")
	return ws, err
}
