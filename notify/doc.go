// Package notify owns telling people that a safeguarding concern was raised:
// who is told (the DSLs and the year group's lead, Route), and the e-mail
// that asks them to sign in (Mailer, over SMTP with net/smtp). The e-mail
// never carries the concern itself: e-mail is not a safe channel for it.
package notify
