package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password rules.
const (
	MinPasswordLen = 10   // characters (runes)
	MaxPasswordLen = 1024 // bytes: far above any passphrase, far below the body limit
)

// Params are the argon2id parameters of a password hash. They are stored
// with the hash (PHC string format), so DefaultParams can change: a hash
// made with other parameters still verifies, and is replaced by one with
// the current parameters at the next successful login.
type Params struct {
	Time      uint32 // passes (t)
	MemoryKiB uint32 // memory in KiB (m)
	Threads   uint8  // lanes (p)
}

// DefaultParams are OWASP's argon2id parameters (m=46 MiB, t=1, p=1):
// about 60 ms of one core here, once per login. Not RFC 9106's t=3, 64 MiB,
// p=4: on the box's 2 cores that took both for 200 ms while the twin
// encoders ran, and an e2e run saw encoder-a restarted as lagging during a
// login. One lane leaves a core to the stream. Hashes run one at a time
// (Auth.hashSem), so logins never hold more than 46 MiB, and the
// per-address lockout keeps guessing slow long before the hash cost
// matters.
var DefaultParams = Params{Time: 1, MemoryKiB: 46 << 10, Threads: 1}

// Limits on a stored hash: the file's parameters decide how much memory a
// login allocates, so an absurd m (a corrupt or planted file) must not take
// the box's memory.
const (
	maxTime      = 32
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxThreads   = 16
	saltLen      = 16
	keyLen       = 32
	minStoredLen = 16 // salt and key bytes accepted from a file
	maxStoredLen = 64
)

// Errors about a password the operator typed.
var (
	ErrPasswordTooShort = fmt.Errorf("auth: password too short: at least %d characters", MinPasswordLen)
	ErrPasswordTooLong  = fmt.Errorf("auth: password too long: at most %d bytes", MaxPasswordLen)
	ErrPasswordInvalid  = errors.New("auth: password is not valid UTF-8")
)

// errBadHash is wrapped by every error about a stored hash that does not
// parse; the error about the file wraps ErrCorruptPasswordFile as well.
var errBadHash = errors.New("not an argon2id hash")

// checkPassword applies the password rules to a new password.
func checkPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return ErrPasswordInvalid
	case len(pw) > MaxPasswordLen:
		return ErrPasswordTooLong
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return ErrPasswordTooShort
	}
	return nil
}

// hash is a parsed argon2id hash.
type hash struct {
	p    Params
	salt []byte
	key  []byte
}

// newHash hashes pw with a fresh random salt.
func newHash(pw string, p Params) (*hash, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("auth: salt: %w", err)
	}
	return &hash{p: p, salt: salt, key: argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)}, nil
}

// verify tells whether pw is the hashed password, in constant time.
func (h *hash) verify(pw string) bool {
	k := argon2.IDKey([]byte(pw), h.salt, h.p.Time, h.p.MemoryKiB, h.p.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

// String is the PHC string: $argon2id$v=19$m=47104,t=1,p=1$salt$key, salt
// and key in unpadded standard base64, as the reference implementation
// writes it.
func (h *hash) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.p.MemoryKiB, h.p.Time, h.p.Threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parseHash parses a PHC string written by String. It is strict: the
// parameters in the given order, within limits, nothing else around them.
func parseHash(s string) (*hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", errBadHash)
	}
	if parts[1] != "argon2id" {
		return nil, fmt.Errorf("%w: algorithm %q", errBadHash, short(parts[1]))
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("%w: version %q, want v=%d", errBadHash, short(parts[2]), argon2.Version)
	}
	kvs := strings.Split(parts[3], ",")
	var vals [3]uint64 // m, t, p
	for i, want := range []string{"m", "t", "p"} {
		var name, val string
		ok := len(kvs) == 3
		if ok {
			name, val, ok = strings.Cut(kvs[i], "=")
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if !ok || err != nil || name != want {
			return nil, fmt.Errorf("%w: parameters %q, want m=…,t=…,p=…", errBadHash, short(parts[3]))
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case t < 1 || t > maxTime:
		return nil, fmt.Errorf("%w: t=%d out of 1…%d", errBadHash, t, maxTime)
	case p < 1 || p > maxThreads:
		return nil, fmt.Errorf("%w: p=%d out of 1…%d", errBadHash, p, maxThreads)
	case m < 8*p || m > maxMemoryKiB:
		return nil, fmt.Errorf("%w: m=%d out of %d…%d", errBadHash, m, 8*p, maxMemoryKiB)
	}
	salt, err := decodeB64(parts[4])
	if err != nil {
		return nil, fmt.Errorf("%w: salt: %w", errBadHash, err)
	}
	key, err := decodeB64(parts[5])
	if err != nil {
		return nil, fmt.Errorf("%w: hash: %w", errBadHash, err)
	}
	return &hash{p: Params{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(p)}, salt: salt, key: key}, nil
}

func decodeB64(s string) ([]byte, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not unpadded base64")
	}
	if len(b) < minStoredLen || len(b) > maxStoredLen {
		return nil, fmt.Errorf("%d bytes, want %d…%d", len(b), minStoredLen, maxStoredLen)
	}
	return b, nil
}

// short quotes at most 20 bytes of a corrupt file's field in an error: enough
// to recognise it, never a whole line of whatever the file holds.
func short(s string) string {
	if len(s) > 20 {
		return strings.ToValidUTF8(s[:20], "?") + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
