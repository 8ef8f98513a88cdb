package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// tokenBytes is the size of every random secret handed to a browser: a
// session ID, a CSRF token.
const tokenBytes = 32

// randomToken returns tokenBytes from crypto/rand, unpadded base64url (43
// characters, safe in a cookie and a header).
func randomToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// equalSecret compares two secrets in constant time, whatever their lengths
// (subtle.ConstantTimeCompare returns at once on different lengths; the
// digests are always 32 bytes).
func equalSecret(a, b string) bool {
	da, db := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(da[:], db[:]) == 1 && a != "" && b != ""
}

// session is one logged-in browser. Its ID is not kept: the store is keyed
// by the ID's SHA-256, so a lookup's timing (a map's hashing and compare)
// tells nothing about IDs that exist.
type session struct {
	key      [sha256.Size]byte
	csrf     string
	created  time.Time
	lastUsed time.Time
}

// sessions is the in-memory session store: lost on restart (the operator
// logs in again), bounded to max, expired lazily on every call.
type sessions struct {
	clock    clockwork.Clock
	idle     time.Duration
	absolute time.Duration
	max      int

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions(clock clockwork.Clock, idle, absolute time.Duration, maxCount int) *sessions {
	return &sessions{clock: clock, idle: idle, absolute: absolute, max: maxCount, m: map[[sha256.Size]byte]*session{}}
}

// create starts a session and returns its ID (for the cookie) and the
// session. When the store is full, the session used least recently is
// evicted: an operator who is using the page keeps it, whoever logs in.
func (s *sessions) create() (id string, _ *session, evicted bool, err error) {
	id, err = randomToken()
	if err != nil {
		return "", nil, false, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, false, err
	}
	now := s.clock.Now()
	ss := &session{key: sha256.Sum256([]byte(id)), csrf: csrf, created: now, lastUsed: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.m) >= s.max {
		var oldest *session
		for _, o := range s.m {
			if oldest == nil || o.lastUsed.Before(oldest.lastUsed) {
				oldest = o
			}
		}
		delete(s.m, oldest.key)
		evicted = true
	}
	s.m[ss.key] = ss
	return id, ss, evicted, nil
}

// get returns the live session of id and marks it used, or nil.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	key := sha256.Sum256([]byte(id))
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[key]
	if ss == nil {
		return nil
	}
	if s.expired(ss, now) {
		delete(s.m, key)
		return nil
	}
	ss.lastUsed = now
	return ss
}

// remove ends the session of id (logout); no such session is no error.
func (s *sessions) remove(id string) {
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// removeAllBut ends every session except keep (nil: all of them): after a
// password change, whoever knew the old password is logged out.
func (s *sessions) removeAllBut(keep *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ss := range s.m {
		if ss != keep {
			delete(s.m, k)
		}
	}
}

// count is the number of live sessions.
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.clock.Now())
	return len(s.m)
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastUsed) >= s.idle || now.Sub(ss.created) >= s.absolute
}

// sweep drops expired sessions; s.mu is held.
func (s *sessions) sweep(now time.Time) {
	for k, ss := range s.m {
		if s.expired(ss, now) {
			delete(s.m, k)
		}
	}
}
