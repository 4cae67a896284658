package auth

import (
	"sync"
	"time"
)

// Throttle counts events per key (an address, an account) in a sliding
// window and says when a key has had its limit. It is used for failed
// sign-ins and WebSocket connection attempts. The zero value is not usable;
// use NewThrottle.
type Throttle struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	events map[string][]time.Time // per key, oldest first, at most limit entries
	sweep  time.Time              // when stale keys were last dropped
}

// NewThrottle allows limit events per key in any window. now nil means
// time.Now.
func NewThrottle(limit int, window time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{limit: limit, window: window, now: now, events: map[string][]time.Time{}}
}

// Blocked reports whether key has had limit events in the last window.
func (t *Throttle) Blocked(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recent(key, t.now())) >= t.limit
}

// Add records an event for key.
func (t *Throttle) Add(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	ev := t.recent(key, now)
	if len(ev) >= t.limit {
		ev = ev[1:] // keep the newest limit events: enough to decide
	}
	t.events[key] = append(ev, now)
	t.dropStale(now)
}

// Allow records an event for key unless it is blocked, and reports which.
func (t *Throttle) Allow(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	ev := t.recent(key, now)
	if len(ev) >= t.limit {
		return false
	}
	t.events[key] = append(ev, now)
	t.dropStale(now)
	return true
}

// recent returns key's events inside the window ending at now.
func (t *Throttle) recent(key string, now time.Time) []time.Time {
	ev := t.events[key]
	i := 0
	for i < len(ev) && now.Sub(ev[i]) >= t.window {
		i++
	}
	if i == len(ev) {
		delete(t.events, key)
		return nil
	}
	return ev[i:]
}

// dropStale forgets keys with no event in the window, at most once a
// window, so memory stays bounded by the keys active recently.
func (t *Throttle) dropStale(now time.Time) {
	if now.Sub(t.sweep) < t.window {
		return
	}
	t.sweep = now
	for k, ev := range t.events {
		if now.Sub(ev[len(ev)-1]) >= t.window {
			delete(t.events, k)
		}
	}
}
