package lobby

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chaperone-edu/chaperone/store"
)

// auditQueue writes a room's audit rows in order, off the room's goroutine:
// the room never waits for the store, and a row the store refuses (disk
// full, database locked) is retried with a growing wait rather than lost.
// Each row keeps the time of its event.
type auditQueue struct {
	to  Audit
	log *slog.Logger

	mu      sync.Mutex
	pending []store.AuditEntry
	wake    chan struct{} // a row was queued
	stop    chan struct{} // closed: write what is queued, then exit
	done    chan struct{} // closed when the writer has exited
	writing bool          // a row is being written (under mu)
}

func newAuditQueue(to Audit, log *slog.Logger) *auditQueue {
	q := &auditQueue{to: to, log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go q.loop()
	return q
}

// add queues e; it never blocks.
func (q *auditQueue) add(e store.AuditEntry) {
	q.mu.Lock()
	q.pending = append(q.pending, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *auditQueue) next() (store.AuditEntry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return store.AuditEntry{}, false
	}
	e := q.pending[0]
	q.pending[0] = store.AuditEntry{}
	q.pending = q.pending[1:]
	q.writing = true
	return e, true
}

func (q *auditQueue) loop() {
	defer close(q.done)
	for {
		for e, ok := q.next(); ok; e, ok = q.next() {
			q.write(e)
			q.mu.Lock()
			q.writing = false
			q.mu.Unlock()
		}
		select {
		case <-q.wake:
		case <-q.stop:
			if q.empty() {
				return
			}
		}
	}
}

func (q *auditQueue) empty() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.pending) == 0 }

// idle reports whether every row queued so far is written.
func (q *auditQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) == 0 && !q.writing
}

// wait returns once every row queued so far is written, or ctx is done.
func (q *auditQueue) wait(ctx context.Context) error {
	for !q.idle() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit rows still queued: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// write appends e, retrying while the store refuses (until it is written:
// a row is never dropped while the process runs).
func (q *auditQueue) write(e store.AuditEntry) {
	wait := 200 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := q.to.AppendAudit(ctx, e)
		cancel()
		if err == nil {
			return
		}
		q.log.Error("audit append failed: retrying", slog.String("action", string(e.Action)), slog.Duration("wait", wait), slog.Any("err", err))
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Second)
	}
}

// close waits up to wait for the queue to be written; what is still
// pending then is logged (the writer goes on trying in the background).
func (q *auditQueue) close(wait time.Duration) {
	close(q.stop)
	select {
	case <-q.done:
	case <-time.After(wait):
		q.mu.Lock()
		lost := append([]store.AuditEntry(nil), q.pending...)
		q.mu.Unlock()
		for _, e := range lost {
			q.log.Error("audit row not written: the store did not come back in time", slog.String("action", string(e.Action)),
				slog.String("target", e.Target), slog.Time("time", e.Time))
		}
	}
}
