//go:build cgo

package av

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sort"
	"sync"

	"go.uber.org/zap"

	"onair/encoder/wire"
)

// link is a child's end of the wire: a Writer plus a goroutine that reads
// commands. When the peer closes (or corrupts) the wire, the reader cancels
// the role's context with ErrWireClosed. The reader ends when rw returns an
// error; the caller owns rw and closes it after Run returns.
type link struct {
	*wire.Writer
	cmds cmdQueue
}

func startLink(ctx context.Context, rw io.ReadWriter, cancel context.CancelCauseFunc, log *zap.Logger) *link {
	l := &link{Writer: wire.NewWriter(rw)}
	go func() {
		rd := wire.NewReader(rw)
		for {
			h, p, err := rd.Read()
			if err != nil {
				if ctx.Err() == nil {
					log.Info("wire closed", zap.Error(err))
				}
				cancel(ErrWireClosed)
				return
			}
			if h.Kind != wire.KindCommand {
				log.Warn("ignoring message", zap.Stringer("kind", h.Kind))
				continue
			}
			var c wire.Command
			if err := json.Unmarshal(p, &c); err != nil {
				log.Warn("bad command", zap.Error(err), zap.ByteString("payload", p))
				continue
			}
			log.Info("command received", zap.String("op", string(c.Op)), zap.Uint64("at_index", c.AtIndex), zap.Int("bitrate_kbps", c.BitrateKbps))
			l.cmds.push(c)
		}
	}()
	return l
}

func (l *link) hello(h wire.Hello) error {
	h.PID = os.Getpid()
	return l.WriteJSON(wire.Header{Kind: wire.KindHello, Index: h.StartIndex}, h)
}

func (l *link) progress(p wire.Progress) error {
	return l.WriteJSON(wire.Header{Kind: wire.KindProgress, Index: p.Index}, p)
}

// cmdQueue holds commands until the frame they address.
type cmdQueue struct {
	mu sync.Mutex
	q  []wire.Command
}

func (q *cmdQueue) push(c wire.Command) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.q = append(q.q, c)
	sort.SliceStable(q.q, func(i, j int) bool { return q.q[i].AtIndex < q.q[j].AtIndex })
}

// due removes and returns, in index order, the commands addressed to index i
// or earlier.
func (q *cmdQueue) due(i uint64) []wire.Command {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for n < len(q.q) && q.q[n].AtIndex <= i {
		n++
	}
	out := append([]wire.Command(nil), q.q[:n]...)
	q.q = q.q[n:]
	return out
}

// stopDue reports whether a stop addressed to index i or earlier is queued
// (used while no frame arrives, so a stop cannot wait for a frame forever).
func (q *cmdQueue) stopDue(i uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range q.q {
		if c.Op == wire.OpStop && c.AtIndex <= i {
			return true
		}
	}
	return false
}

// runErr turns the end of a role into its result: nil after a cancel or a
// stop, ErrWireClosed when onaird went away, err otherwise.
func runErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrWireClosed) {
		return ErrWireClosed
	}
	if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}
