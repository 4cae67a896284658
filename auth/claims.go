package auth

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// rawClaims is the ID token payload as providers send it. Several providers
// disagree on types (email_verified as "true", groups as one string), so the
// loose fields are decoded by hand.
type rawClaims struct {
	Iss           string          `json:"iss"`
	Sub           string          `json:"sub"`
	Aud           json.RawMessage `json:"aud"`
	Azp           string          `json:"azp"`
	Iat           json.RawMessage `json:"iat"`
	AuthTime      json.RawMessage `json:"auth_time"`
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
	GivenName     string          `json:"given_name"`
	FamilyName    string          `json:"family_name"`
	Groups        json.RawMessage `json:"groups"`
	Roles         json.RawMessage `json:"roles"`
	Tid           string          `json:"tid"`
	Hd            string          `json:"hd"`
	Oid           string          `json:"oid"`
	ClaimNames    json.RawMessage `json:"_claim_names"`
	HasGroups     json.RawMessage `json:"hasgroups"`
	Amr           json.RawMessage `json:"amr"`
	Acr           string          `json:"acr"`
}

// TokenClaims is what ParseClaims reads from an ID token payload: the
// person's claims plus the token facts the relying party checks itself.
type TokenClaims struct {
	Claims
	Audience []string
	AZP      string
	IssuedAt time.Time // zero when absent
	AuthTime time.Time // zero when absent
}

// ParseClaims decodes an ID token payload (JSON). It is strict about
// structure and lenient about the type variations real providers send.
func ParseClaims(payload []byte) (TokenClaims, error) {
	var rc rawClaims
	if err := json.Unmarshal(payload, &rc); err != nil {
		return TokenClaims{}, fmt.Errorf("decode ID token claims: %w", err)
	}
	var tc TokenClaims
	var err error
	tc.Issuer, tc.Subject = rc.Iss, rc.Sub
	tc.Email, tc.Name, tc.GivenName, tc.FamilyName = rc.Email, rc.Name, rc.GivenName, rc.FamilyName
	tc.TenantID, tc.HostedDomain, tc.ACR, tc.AZP, tc.ObjectID = rc.Tid, rc.Hd, rc.Acr, rc.Azp, rc.Oid
	if tc.GroupsOverage, err = groupsOverage(rc.ClaimNames, rc.HasGroups); err != nil {
		return TokenClaims{}, err
	}
	if tc.EmailVerified, err = looseBool(rc.EmailVerified); err != nil {
		return TokenClaims{}, fmt.Errorf("claim email_verified: %w", err)
	}
	if tc.Audience, err = stringList(rc.Aud); err != nil {
		return TokenClaims{}, fmt.Errorf("claim aud: %w", err)
	}
	groups, err := stringList(rc.Groups)
	if err != nil {
		return TokenClaims{}, fmt.Errorf("claim groups: %w", err)
	}
	roles, err := stringList(rc.Roles)
	if err != nil {
		return TokenClaims{}, fmt.Errorf("claim roles: %w", err)
	}
	tc.Groups = append(groups, roles...)
	if tc.AMR, err = stringList(rc.Amr); err != nil {
		return TokenClaims{}, fmt.Errorf("claim amr: %w", err)
	}
	if tc.IssuedAt, err = numericDate(rc.Iat); err != nil {
		return TokenClaims{}, fmt.Errorf("claim iat: %w", err)
	}
	if tc.AuthTime, err = numericDate(rc.AuthTime); err != nil {
		return TokenClaims{}, fmt.Errorf("claim auth_time: %w", err)
	}
	return tc, nil
}

// groupsOverage reads Entra ID's overage markers: _claim_names naming
// "groups" (the groups are at a distributed claim source, in practice
// Microsoft Graph), or hasgroups true (the implicit flow's form).
func groupsOverage(claimNames, hasGroups json.RawMessage) (bool, error) {
	if !isNull(claimNames) {
		var names map[string]json.RawMessage
		if err := json.Unmarshal(claimNames, &names); err != nil {
			return false, fmt.Errorf("claim _claim_names: want an object")
		}
		if _, ok := names["groups"]; ok {
			return true, nil
		}
	}
	v, err := looseBool(hasGroups)
	if err != nil {
		return false, fmt.Errorf("claim hasgroups: %w", err)
	}
	return v != nil && *v, nil
}

func isNull(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }

func looseBool(b json.RawMessage) (*bool, error) {
	if isNull(b) {
		return nil, nil
	}
	var v bool
	if err := json.Unmarshal(b, &v); err == nil {
		return &v, nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("want true or false")
	}
	switch strings.ToLower(s) {
	case "true":
		v = true
	case "false":
		v = false
	default:
		return nil, fmt.Errorf("want true or false, got %q", s)
	}
	return &v, nil
}

func stringList(b json.RawMessage) ([]string, error) {
	if isNull(b) {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("want a string or a list of strings")
	}
	return []string{s}, nil
}

func numericDate(b json.RawMessage) (time.Time, error) {
	if isNull(b) {
		return time.Time{}, nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return time.Time{}, fmt.Errorf("want seconds since 1970")
	}
	if f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("out of range")
	}
	return time.Unix(int64(f), 0).UTC(), nil
}
