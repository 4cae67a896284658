package recording

import "time"

// SetHealthInterval sets how often Upload checks that S3 still answers.
func SetHealthInterval(b *Bucket, d time.Duration) { b.health = d }

// Abandon stops a session as a crash would.
func Abandon(s *Session) { s.abandon() }
