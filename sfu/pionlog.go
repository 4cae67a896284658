package sfu

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLoggerFactory sends pion's logs to slog, tagged with pion's scope.
// Pion's trace level is dropped and its info level (every state change of
// every connection) becomes debug.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With(slog.String("pion", scope))}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(string)                 {}
func (l pionLogger) Tracef(string, ...any)        {}
func (l pionLogger) Debug(msg string)             { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(f string, args ...any) { l.logf(slog.LevelDebug, f, args...) }
func (l pionLogger) Info(msg string)              { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Infof(f string, args ...any)  { l.logf(slog.LevelDebug, f, args...) }
func (l pionLogger) Warn(msg string)              { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Warnf(f string, args ...any)  { l.logf(slog.LevelDebug, f, args...) }
func (l pionLogger) Error(msg string)             { l.logf(slog.LevelError, "%s", msg) }
func (l pionLogger) Errorf(f string, args ...any) { l.logf(slog.LevelError, f, args...) }
