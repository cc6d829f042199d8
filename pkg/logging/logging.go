// Package logging builds the suite's structured logger from LOG_FORMAT
// (colour, plain, json) and LOG_LEVEL (ERROR, WARN, INFO, DEBUG). Every
// line is redacted (values of secret-named keys, JWTs and bearer
// credentials anywhere in the text) and carries the trace_id and span_id
// of the context it was logged with.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// New returns a logger writing to w in the given format at the given
// level. Every record passes through the redaction (RedactAttr) and, when
// logged with a context that carries a span, gets trace_id and span_id.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	h, err := newHandler(w, format, level)
	if err != nil {
		return nil, err
	}
	return slog.New(traceHandler{next: redactHandler{next: h}}), nil
}

func newHandler(w io.Writer, format, level string) (slog.Handler, error) {
	var lv slog.Level
	switch strings.ToUpper(level) {
	case "", "INFO":
		lv = slog.LevelInfo
	case "DEBUG":
		lv = slog.LevelDebug
	case "WARN", "WARNING":
		lv = slog.LevelWarn
	case "ERROR":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("LOG_LEVEL: want ERROR, WARN, INFO or DEBUG, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "json":
		return slog.NewJSONHandler(w, opts), nil
	case "plain":
		return slog.NewTextHandler(w, opts), nil
	case "colour", "color":
		return &colourHandler{Handler: slog.NewTextHandler(w, opts), w: w, mu: &sync.Mutex{}, level: lv}, nil
	}
	return nil, fmt.Errorf("LOG_FORMAT: want colour, plain or json, got %q", format)
}

// colourHandler prints a coloured level tag before a plain text record.
type colourHandler struct {
	slog.Handler
	w     io.Writer
	mu    *sync.Mutex
	level slog.Level
	attrs []slog.Attr
	group string
}

func (h *colourHandler) Handle(ctx context.Context, r slog.Record) error {
	colour := "\033[36m"
	switch {
	case r.Level >= slog.LevelError:
		colour = "\033[31m"
	case r.Level >= slog.LevelWarn:
		colour = "\033[33m"
	case r.Level < slog.LevelInfo:
		colour = "\033[90m"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s%-5s\033[0m %s", r.Time.Format("15:04:05.000"), colour, r.Level.String(), r.Message)
	write := func(a slog.Attr) bool {
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		fmt.Fprintf(&b, " \033[2m%s=\033[0m%v", key, a.Value.Resolve())
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *colourHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *colourHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}
