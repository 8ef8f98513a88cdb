package link

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"onair/encoder/wire"
)

// Found by issue 14's profile: onaird's end of each child's socketpair was
// a blocking file, so every reader held an OS thread in read(2) and the Go
// runtime's sysmon woke every 20 µs to retake its P: half of onaird's CPU.
// The parent end must wait in the netpoller (a read deadline works only
// there), the child's end must stay blocking (onair-av reads commands from
// it as a plain fd), and packets still arrive in order up to the end.
func TestParentEndWaitsInThePollerAndTheChildEndStaysBlocking(t *testing.T) {
	l, _, c := newTestLink(t, RoleEncode, nil)
	files, closeKid, err := l.ExtraFiles()
	if err != nil {
		t.Fatal(err)
	}
	kid := files[0]
	l.mu.Lock()
	parent := l.pending
	l.mu.Unlock()

	if err = parent.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("parent end: read deadline: %v (a blocking file has none: its reads hold a thread in a syscall)", err)
	}
	if err = parent.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	raw, err := kid.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err = raw.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(errors.Join(err, ferr))
	}
	if flags&unix.O_NONBLOCK != 0 {
		t.Fatal("child end is non-blocking: onair-av would get EAGAIN on fd 3")
	}

	// A dup stands for the child's copy, as after the exec.
	dup, err := syscall.Dup(int(kid.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	closeKid()
	child := os.NewFile(uintptr(dup), "child")
	l.Attach(3)
	w := wire.NewWriter(child)
	if err := w.WriteJSON(wire.Header{Kind: wire.KindHello}, wire.Hello{Role: "encode", StartIndex: 5}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(5); i < 8; i++ {
		if err := w.Write(wire.Header{Kind: wire.KindVideo, Index: i}, []byte{0, 0, 0, 1, 9}); err != nil {
			t.Fatal(err)
		}
	}
	if err := child.Close(); err != nil {
		t.Fatal(err)
	}
	l.Wait()
	var evs []Event
	for _, m := range c.msgs {
		evs = append(evs, m.Ev)
	}
	if want := []Event{EvStarted, EvPacket, EvPacket, EvPacket, EvEnded}; !equal(evs, want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
}
