package nut

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// hangUp, as an answer line, makes the fake close the connection.
const hangUp = "\x00hang up"

// fakeUpsd is a scripted upsd on 127.0.0.1: its answer function maps each
// request line to the lines it sends back (nil: it says nothing, a stalled
// upsd). It records the requests and counts the connections.
type fakeUpsd struct {
	ln      net.Listener
	accepts atomic.Int32

	mu     sync.Mutex
	answer func(req string) []string
	reqs   []string
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startFake(t *testing.T, answer func(req string) []string) *fakeUpsd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpsd{ln: ln, answer: answer}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepts.Add(1)
			f.mu.Lock()
			f.conns = append(f.conns, conn)
			f.wg.Add(1)
			f.mu.Unlock()
			go f.serve(conn)
		}
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeUpsd) serve(conn net.Conn) {
	defer f.wg.Done()
	defer func() { _ = conn.Close() }()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		f.mu.Lock()
		f.reqs = append(f.reqs, sc.Text())
		answer := f.answer
		f.mu.Unlock()
		for _, l := range answer(sc.Text()) {
			if l == hangUp {
				return
			}
			if _, err := io.WriteString(conn, l+"\n"); err != nil {
				return
			}
		}
	}
}

// stop closes the listener and every connection and waits for the fake's
// goroutines.
func (f *fakeUpsd) stop() {
	_ = f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeUpsd) addr() string { return f.ln.Addr().String() }

func (f *fakeUpsd) setAnswer(answer func(req string) []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = answer
}

func (f *fakeUpsd) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

// capturedList is LIST VAR dummy's answer as upsd 2.8.0 sent it.
func capturedList(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/upsd-2.8.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Split(string(b), "\n")
	var list []string
	in := false
	for _, l := range all {
		in = in || l == "BEGIN LIST VAR dummy"
		if in {
			list = append(list, l)
		}
		if l == "END LIST VAR dummy" {
			return list
		}
	}
	t.Fatal("no LIST VAR dummy in testdata/upsd-2.8.0.txt")
	return nil
}

// upsdLike answers like upsd 2.8.0 with one UPS "dummy" whose LIST VAR is
// list: USERNAME and PASSWORD always OK, LOGIN OK only for user "mon" with
// password `p w"x` (ACCESS-DENIED otherwise, ALREADY-LOGGED-IN the second
// time on a connection; the fake tracks one login per fake).
func upsdLike(list []string) func(req string) []string {
	var mu sync.Mutex
	var user, pass string
	loggedIn := false
	return func(req string) []string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case req == "LIST VAR dummy":
			return list
		case strings.HasPrefix(req, "LIST VAR "), strings.HasPrefix(req, "LOGIN ") && req != "LOGIN dummy":
			return []string{"ERR UNKNOWN-UPS"}
		case strings.HasPrefix(req, "USERNAME "):
			user = strings.TrimPrefix(req, "USERNAME ")
			return []string{"OK"}
		case strings.HasPrefix(req, "PASSWORD "):
			pass = strings.TrimPrefix(req, "PASSWORD ")
			return []string{"OK"}
		case req == "LOGIN dummy":
			if user != "mon" || pass != `"p w\"x"` {
				return []string{"ERR ACCESS-DENIED"}
			}
			if loggedIn {
				return []string{"ERR ALREADY-LOGGED-IN"}
			}
			loggedIn = true
			return []string{"OK"}
		case req == "LOGOUT":
			return []string{"OK Goodbye", hangUp}
		}
		return []string{"ERR UNKNOWN-COMMAND"}
	}
}
