package link

import "sync"

// Queue carries messages from the readers of several links to one consumer,
// bounded in bytes as well as in count: a child that floods onaird with
// large packets blocks on its own socket (its writes stall, the supervisor
// sees it) instead of growing onaird's memory. A single message larger than
// the bound is admitted when the queue is empty, so nothing deadlocks.
type Queue struct {
	ch chan Msg

	mu       sync.Mutex
	cond     *sync.Cond
	bytes    int
	maxBytes int
	closed   bool
	peak     int
}

// NewQueue makes a queue of at most maxItems messages and maxBytes payload bytes.
func NewQueue(maxItems, maxBytes int) *Queue {
	q := &Queue{ch: make(chan Msg, maxItems), maxBytes: maxBytes}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Put queues m, blocking while the queue is full. It reports false (and
// drops m) once the queue is closed.
func (q *Queue) Put(m Msg) bool {
	n := m.Size()
	q.mu.Lock()
	for !q.closed && q.bytes > 0 && q.bytes+n > q.maxBytes {
		q.cond.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.bytes += n
	q.peak = max(q.peak, q.bytes)
	q.mu.Unlock()
	q.ch <- m // blocks while maxItems are queued; the consumer never holds mu
	return true
}

// C is where the consumer receives; it is closed by Close.
func (q *Queue) C() <-chan Msg { return q.ch }

// Release returns m's bytes to the budget; the consumer calls it for every
// message it received, once it no longer needs m.Data.
func (q *Queue) Release(m Msg) {
	q.mu.Lock()
	q.bytes -= m.Size()
	q.mu.Unlock()
	q.cond.Broadcast()
}

// Close ends the queue once every producer has returned from Put (call it
// after Link.Wait on every link that feeds it).
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
	close(q.ch)
}

// Bytes is the payload currently queued and the most ever queued.
func (q *Queue) Bytes() (now, peak int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes, q.peak
}
