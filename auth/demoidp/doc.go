// Package demoidp is chaperone's built-in demonstration OpenID Provider.
//
// It owns the seeded Oakfield demo school accounts (users.json, every password
// "oakfield"), an in-memory OpenID Provider built on zitadel/oidc's op package
// (discovery, JWKS, authorize, token, userinfo, end_session; authorization code
// flow with PKCE S256 for public clients or a client secret for confidential
// ones; RS256 ID tokens carrying the profile, e-mail, groups and amr claims;
// per account, the shapes of other providers: Google's hd without groups,
// Entra's tid and oid with the group-overage marker instead of groups),
// and its plain HTML sign-in page with an optional demo one-time code.
//
// It is used by `chaperone dev` (make run) and by integration tests. It is not
// meant for production: everything lives in memory, plain http issuers are
// allowed, and every authorize request shows the sign-in form (there is no
// single sign-on session).
package demoidp
