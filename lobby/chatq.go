package lobby

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chaperone-edu/chaperone/store"
)

// chatWriter stores a room's chat text (new messages, deletions) in order,
// off the room's goroutine: the room never waits for the store. A message is
// seen by the room only once its text is stored (a message that cannot be
// kept for the DSL is not sent); a write the store refuses is retried a few
// times, then its sender is told to try again.
type chatWriter struct {
	to  ChatStore
	log *slog.Logger

	mu      sync.Mutex
	pending []chatOp
	busy    bool          // an op is being written (under mu)
	wake    chan struct{} // an op was queued
	stop    chan struct{} // closed: write what is queued, then exit
	done    chan struct{} // closed when the writer has exited
	idle    *sync.Cond    // signalled when pending empties and busy clears
}

// chatOp is one write: add or del, then after runs (with the outcome) once
// it is done.
type chatOp struct {
	add   *store.ChatMessage
	del   *chatDeletion
	after func(error)
}

type chatDeletion struct {
	sessionID, id, by string
	at                time.Time
}

// chatMaxQueued bounds a room's chat writes waiting for the store: past it
// new messages are refused at once (the store is not keeping up).
const chatMaxQueued = 256

// chatRetries are the waits before each further attempt at a write.
var chatRetries = []time.Duration{300 * time.Millisecond, time.Second}

func newChatWriter(to ChatStore, log *slog.Logger) *chatWriter {
	w := &chatWriter{to: to, log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.idle = sync.NewCond(&w.mu)
	go w.loop()
	return w
}

// add queues op; false when the queue is full (nothing was queued).
func (w *chatWriter) add(op chatOp) bool {
	w.mu.Lock()
	if len(w.pending) >= chatMaxQueued {
		w.mu.Unlock()
		return false
	}
	w.pending = append(w.pending, op)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

func (w *chatWriter) next() (chatOp, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		w.busy = false
		w.idle.Broadcast()
		return chatOp{}, false
	}
	op := w.pending[0]
	w.pending[0] = chatOp{}
	w.pending = w.pending[1:]
	w.busy = true
	return op, true
}

func (w *chatWriter) loop() {
	defer close(w.done)
	for {
		for {
			op, ok := w.next()
			if !ok {
				break
			}
			op.after(w.write(op))
		}
		select {
		case <-w.wake:
		case <-w.stop:
			if _, ok := w.peek(); !ok {
				return
			}
		}
	}
}

func (w *chatWriter) peek() (chatOp, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return chatOp{}, false
	}
	return w.pending[0], true
}

// write does one op, retrying.
func (w *chatWriter) write(op chatOp) error {
	var err error
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		switch {
		case op.add != nil:
			err = w.to.AddChatMessage(ctx, *op.add)
		case op.del != nil:
			err = w.to.DeleteChatMessage(ctx, op.del.sessionID, op.del.id, op.del.by, op.del.at)
		}
		cancel()
		if err == nil || attempt >= len(chatRetries) {
			break
		}
		w.log.Warn("chat not stored: retrying", slog.Duration("wait", chatRetries[attempt]), slog.Any("err", err))
		time.Sleep(chatRetries[attempt])
	}
	if err != nil {
		return fmt.Errorf("store chat: %w", err)
	}
	return nil
}

// wait returns once every queued write is done (or ctx ends).
func (w *chatWriter) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		w.mu.Lock()
		for len(w.pending) > 0 || w.busy {
			w.idle.Wait()
		}
		w.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chat writes still queued: %w", ctx.Err())
	}
}

// close waits up to wait for the queue to be written.
func (w *chatWriter) close(wait time.Duration) {
	close(w.stop)
	select {
	case <-w.done:
	case <-time.After(wait):
		w.log.Error("chat writes not done: the store did not come back in time")
	}
}
