package testkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClockOffsetEnv names the environment variable that moves every clock the
// tests inject (Now, SchoolDay, and a gateway started without its own clock)
// by a duration: Go's syntax ("9600h") or whole days ("400d"). CI runs the
// suite once with "400d", so a test that mixes a fixed calendar date with the
// real clock fails today rather than on some later day. The real clock
// stays real where the world outside checks it: ID tokens of the demo IdP,
// and Object Lock retention on the S3 server.
const ClockOffsetEnv = "CHAPERONE_TEST_CLOCK_OFFSET"

var clockOffset = sync.OnceValue(func() time.Duration {
	v := strings.TrimSpace(os.Getenv(ClockOffsetEnv))
	if v == "" {
		return 0
	}
	d, err := ParseClockOffset(v)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", ClockOffsetEnv, err))
	}
	return d
})

// ParseClockOffset reads a clock offset: a Go duration or a whole number of
// days ("400d").
func ParseClockOffset(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("bad number of days %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("bad offset %q: want a duration like 9600h or days like 400d", v)
	}
	return d, nil
}

// ClockOffset is how far the tests' clocks are moved (ClockOffsetEnv).
func ClockOffset() time.Duration { return clockOffset() }

// Now is the tests' "real" clock: time.Now moved by ClockOffset. Use it, not
// time.Now, wherever a test builds dates the gateway compares with its clock.
func Now() time.Time { return time.Now().Add(ClockOffset()) }

// SchoolDay is 08:00 in London on the first Tuesday at least two days after
// Now: a school day far enough ahead that a lesson that morning is in the
// future, and always the same day of the week, whatever today is.
func SchoolDay() time.Time {
	d := Now().In(London).AddDate(0, 0, 2)
	for d.Weekday() != time.Tuesday {
		d = d.AddDate(0, 0, 1)
	}
	return time.Date(d.Year(), d.Month(), d.Day(), 8, 0, 0, 0, London)
}

// Day is the date of t in London as a form field or query gives it
// (2006-01-02).
func Day(t time.Time) string { return t.In(London).Format(time.DateOnly) }

// Clock is a settable clock for tests. It stands still until Run makes it
// go on from where it is set, at the real clock's pace (for what is timed
// by it and by the wall clock alike, such as a recording's packets).
type Clock struct {
	mu      sync.Mutex
	t       time.Time
	running bool
	since   time.Time // when t was last set, once running
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return c.t.Add(time.Since(c.since))
	}
	return c.t
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t, c.since = t, time.Now(); c.mu.Unlock() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Run makes the clock go on from now at the real clock's pace.
func (c *Clock) Run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		c.running, c.since = true, time.Now()
	}
}
