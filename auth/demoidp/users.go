package demoidp

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

//go:embed users.json
var seedUsers []byte

// User is one account of the demo provider, in the format of users.json.
type User struct {
	Username      string   `json:"username"`
	Sub           string   `json:"sub"`
	GivenName     string   `json:"given_name,omitempty"`
	FamilyName    string   `json:"family_name,omitempty"`
	Name          string   `json:"name,omitempty"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Groups        []string `json:"groups"`
	MFA           bool     `json:"mfa,omitempty"` // the account can give the demo one-time code
	// Provider shapes, for testing the gateway against what Google and
	// Entra ID send: HostedDomain is Google's hd claim, TenantID and
	// ObjectID are Entra's tid and oid.
	HostedDomain string `json:"hd,omitempty"`
	TenantID     string `json:"tid,omitempty"`
	ObjectID     string `json:"oid,omitempty"`
	// NoGroups sends no groups claim at all, as Google does.
	NoGroups bool `json:"no_groups,omitempty"`
	// GroupsOverage sends Entra ID's overage marker (_claim_names and
	// _claim_sources pointing at Graph) instead of the groups, as Entra ID
	// does for an account in more than 200 groups.
	GroupsOverage bool   `json:"groups_overage,omitempty"`
	Refused       string `json:"refused,omitempty"` // documentation only: why the gateway refuses it
}

// DisplayName is given_name + " " + family_name when both are set, else name.
func DisplayName(u User) string {
	if u.GivenName != "" && u.FamilyName != "" {
		return u.GivenName + " " + u.FamilyName
	}
	if u.Name != "" {
		return u.Name
	}
	return strings.TrimSpace(u.GivenName + " " + u.FamilyName)
}

// SeedUsers returns the embedded Oakfield demo accounts.
func SeedUsers() ([]User, error) { return parseUsers(seedUsers) }

// LoadUsers reads a users file in the same format as the embedded users.json
// ({"users": [...]}; a bare JSON array is accepted too).
func LoadUsers(path string) ([]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("demoidp: read users: %w", err)
	}
	users, err := parseUsers(b)
	if err != nil {
		return nil, fmt.Errorf("demoidp: %s: %w", path, err)
	}
	return users, nil
}

func parseUsers(b []byte) ([]User, error) {
	var file struct {
		Users []User `json:"users"`
	}
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal(b, &file.Users); err != nil {
			return nil, fmt.Errorf("parse users: %w", err)
		}
	} else if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("parse users: %w", err)
	}
	if err := validateUsers(file.Users); err != nil {
		return nil, err
	}
	return file.Users, nil
}

func validateUsers(users []User) error {
	if len(users) == 0 {
		return errors.New("no users")
	}
	names, subs := map[string]bool{}, map[string]bool{}
	for i, u := range users {
		key := normUsername(u.Username)
		switch {
		case key == "":
			return fmt.Errorf("user %d: username missing", i)
		case u.Sub == "":
			return fmt.Errorf("user %q: sub missing", u.Username)
		case strings.Contains(u.Sub, ":"):
			// op's opaque access tokens are "tokenID:subject"
			return fmt.Errorf("user %q: sub must not contain ':'", u.Username)
		case names[key]:
			return fmt.Errorf("user %q: duplicate username", u.Username)
		case subs[u.Sub]:
			return fmt.Errorf("user %q: duplicate sub", u.Username)
		}
		names[key], subs[u.Sub] = true, true
	}
	return nil
}

func normUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
