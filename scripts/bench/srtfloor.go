package main

// The SRT floor of issue 14: how much of onaird's CPU is the SRT library's
// own (github.com/datarhei/gosrt runs a 10 ms ticker per connection that
// sends, ACKs and NAKs, and allocates per packet), measured in a process
// that does nothing else: the bench binary run again with -srt-floor-child.
//
//   - idle: a bare gosrt caller, connected with the output's settings, that
//     writes nothing (the ticker and the ACK traffic alone);
//   - 4 Mbit/s: the output package (output.SRT: its queue, pacer and gosrt)
//     carrying a stream shaped like onaird's at 4 Mbit/s: one video frame
//     of TS packets every 33 ms and one audio frame every 21 ms.
//
// The receiver is a gosrt listener in the bench process itself, which
// reads and discards; only the child's CPU is counted.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	srt "github.com/datarhei/gosrt"

	"onair/output"
	"onair/output/srturl"
)

var (
	floorChild = flag.String("srt-floor-child", "", "internal: run as the SRT floor's caller to this host:port until SIGTERM")
	floorKbps  = flag.Int("srt-floor-kbps", 0, "internal: with -srt-floor-child, stream this many kbit/s through output.SRT (0: an idle gosrt connection)")
)

// runSRTFloor measures the child idle and at 4 Mbit/s over the window.
func runSRTFloor(window time.Duration) {
	for _, run := range []struct {
		name string
		kbps int
	}{{"idle", 0}, {"4mbps", 4000}} {
		cpu, err := srtFloor(run.kbps, window)
		check(err)
		emit("breakdown_srt_floor_"+run.name+"_cpu", 100*cpu.Seconds()/window.Seconds(), "%core")
	}
}

// srtFloor runs the child against a listener in this process and returns
// the child's CPU over the window (after settle).
func srtFloor(kbps int, window time.Duration) (time.Duration, error) {
	cfg := srt.DefaultConfig()
	cfg.Latency = 200 * time.Millisecond
	addr := fmt.Sprintf("127.0.0.1:%d", freePort("udp"))
	ln, err := srt.Listen("srt", addr, cfg)
	if err != nil {
		return 0, fmt.Errorf("bench: srt floor: %w", err)
	}
	defer ln.Close()
	var conns, received atomic.Int64
	go func() {
		for {
			req, aerr := ln.Accept2()
			if aerr != nil {
				return // the listener closed
			}
			conn, aerr := req.Accept()
			if aerr != nil {
				continue
			}
			conns.Add(1)
			go func() {
				buf := make([]byte, 2048)
				for {
					n, rerr := conn.Read(buf)
					if rerr != nil {
						return
					}
					received.Add(int64(n))
				}
			}()
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("bench: srt floor: %w", err)
	}
	cmd := exec.Command(self, "-srt-floor-child", addr, "-srt-floor-kbps", strconv.Itoa(kbps))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err = cmd.Start(); err != nil {
		return 0, fmt.Errorf("bench: srt floor: %w", err)
	}
	defer stop(cmd)
	time.Sleep(settle)
	c0, err := procCPU(cmd.Process.Pid, "")
	if err != nil {
		return 0, err
	}
	time.Sleep(window)
	c1, err := procCPU(cmd.Process.Pid, "")
	if err != nil {
		return 0, err
	}
	// A child that never connected would measure a redial loop.
	if conns.Load() != 1 || (kbps > 0) != (received.Load() > 0) {
		return 0, fmt.Errorf("bench: srt floor at %d kbit/s: %d connections, %d bytes received", kbps, conns.Load(), received.Load())
	}
	return c1 - c0, nil
}

// srtFloorChild is the child: it calls addr and, with kbps > 0, streams
// through output.SRT until SIGTERM.
func srtFloorChild(addr string, kbps int) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	if kbps <= 0 {
		c := srt.DefaultConfig()
		c.PeerLatency, c.ReceiverLatency = 200*time.Millisecond, 200*time.Millisecond
		c.PayloadSize = output.ChunkSize
		conn, err := srt.Dial("srt", addr, c)
		if err != nil {
			return fmt.Errorf("bench: srt floor child: %w", err)
		}
		<-ctx.Done()
		return conn.Close()
	}
	target, err := srturl.Parse("srt://" + addr + "?latency=200")
	if err != nil {
		return fmt.Errorf("bench: srt floor child: %w", err)
	}
	out, err := output.New(output.Config{Target: target}, nil, nil)
	if err != nil {
		return fmt.Errorf("bench: srt floor child: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- out.Run(ctx) }()
	// One video frame every 33 ms (kbps less the audio's 160 kbit/s of TS),
	// one audio frame of 3 TS packets every 21.33 ms.
	const pkt = 188
	video := make([]byte, max(1, (kbps-160)*1000/8/fps/pkt)*pkt)
	audio := make([]byte, 3*pkt)
	for _, b := range [][]byte{video, audio} {
		for i := 0; i < len(b); i += pkt {
			b[i] = 0x47
		}
	}
	vt := time.NewTicker(time.Second / fps)
	defer vt.Stop()
	at := time.NewTicker(1024 * time.Second / 48000)
	defer at.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-done
		case <-vt.C:
			_, _ = out.Write(video) // never fails: drops while not connected
		case <-at.C:
			_, _ = out.Write(audio)
		}
	}
}

// floorChildMain runs the child when the flags ask for it; false otherwise.
func floorChildMain() bool {
	if *floorChild == "" {
		return false
	}
	if err := srtFloorChild(*floorChild, *floorKbps); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, filepath.Base(os.Args[0])+":", err)
		os.Exit(1)
	}
	return true
}
