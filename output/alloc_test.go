package output

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"
	"go.uber.org/zap"
)

// BenchmarkSendFrame is the output's per-packet path at its default pace:
// one 4 Mbit/s video frame (16.5 KB of TS, 13 SRT packets) every 33 ms,
// written and sent through gosrt to a gosrt listener in this process,
// which reads and discards. allocs/op counts the whole process over one
// frame interval (both ends of gosrt and their 10 ms tickers too);
// turns/frame is how often the send loop woke up per frame (issue 14: it
// woke once per chunk and allocated a timer for each wait). It streams in
// real time at 30 fps: run it under the shared lock.
func BenchmarkSendFrame(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_ = pc.Close() // only asked for a free port
	ln, err := srt.Listen("srt", addr, srt.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	received := make(chan int, 1024)
	go func() {
		req, aerr := ln.Accept2()
		if aerr != nil {
			return
		}
		conn, aerr := req.Accept()
		if aerr != nil {
			return
		}
		buf := make([]byte, 2048)
		for {
			n, rerr := conn.Read(buf)
			if rerr != nil {
				return
			}
			received <- n
		}
	}()
	s, err := New(Config{Target: mustURL(b, fmt.Sprintf("srt://%s?latency=200", addr))}, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Errorf("output: %v", err)
		}
	}()
	for s.Status().State != StateConnected {
		time.Sleep(10 * time.Millisecond)
	}
	frame := make([]byte, 88*188) // 16.5 KB: 4 Mbit/s at 30 fps
	for i := 0; i < len(frame); i += 188 {
		frame[i] = 0x47
	}
	turns0 := s.turns.Load()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	frames, sent := 0, 0
	for b.Loop() {
		<-tick.C
		_, _ = s.Write(frame)
		frames++
	}
	b.StopTimer()
	for sent < frames*len(frame) {
		sent += <-received
	}
	b.ReportMetric(float64(s.turns.Load()-turns0)/float64(frames), "turns/frame")
}
