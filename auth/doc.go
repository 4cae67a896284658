// Package auth signs people in with the school's OpenID Connect identity
// provider and decides who they are: the identity policy (school account,
// verified full name, role from IdP groups, e-mail domains or a role list) as
// pure functions, the Microsoft Graph lookup for an Entra account whose groups
// did not fit in its token, the relying
// party (authorization code flow with PKCE, state and nonce), server-side web
// sessions behind an HttpOnly cookie, and CSRF protection. It knows nothing of
// rooms or lessons.
package auth
