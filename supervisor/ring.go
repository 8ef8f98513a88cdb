package supervisor

import "sync"

// lineRing keeps the last len(lines) lines written to it (gokrazy
// lineRingBuffer). Safe for concurrent use.
type lineRing struct {
	mu    sync.Mutex
	lines []string
	next  int  // index the next line goes to
	full  bool // lines has wrapped at least once
}

func newLineRing(n int) *lineRing { return &lineRing{lines: make([]string, n)} }

func (r *lineRing) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = line
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
}

// snapshot returns the kept lines, oldest first, in a new slice.
func (r *lineRing) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.lines[:r.next]...)
	}
	out := make([]string, 0, len(r.lines))
	out = append(out, r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}
