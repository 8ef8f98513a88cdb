package main

// The cost of a fresh x264 session per GOP (issue 14): video.relock: gop
// (what the twins use: every GOP a new session, so a restarted twin is
// identical again at the next boundary) against video.relock: command (one
// session until onaird orders a reset), at the bench's 720p30 settings and
// at configs/1080p30.yaml's, veryfast, threads=1, VBV. The figures come from
// encoder/av's BenchmarkX264SessionPerGOP (the encoder's own GOP reset and
// encode path, one op a frame, the process CPU per frame), run with go test
// because encoder/av links FFmpeg and only cmd/onair-av and its own tests may
// import it. Five counts of 450 frames, the median of each.

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

func runX264Sessions() {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkX264SessionPerGOP$",
		"-benchtime", "450x", "-count", "5", "./encoder/av/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		check(fmt.Errorf("bench: x264 sessions: %w: %s", err, out.String()))
	}
	cpu := map[string][]float64{} // "720p30/gop" → cpu-us/frame per count
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[0], "BenchmarkX264SessionPerGOP/") || f[len(f)-1] != "cpu-us/frame" {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkX264SessionPerGOP/")
		if k := strings.LastIndexByte(name, '-'); k > 0 {
			name = name[:k] // the GOMAXPROCS suffix
		}
		v, err := strconv.ParseFloat(f[len(f)-2], 64)
		check(err)
		cpu[name] = append(cpu[name], v)
	}
	median := func(name string) float64 {
		v := cpu[name]
		if len(v) == 0 {
			check(fmt.Errorf("bench: x264 sessions: no %s figure in:\n%s", name, out.String()))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	for _, s := range []struct {
		name string
		gop  int
	}{{"720p30", 30}, {"1080p30", 60}} {
		g, c := median(s.name+"/gop"), median(s.name+"/command")
		emit("x264_session_"+s.name+"_cpu_per_frame_relock_gop", g, "us")
		emit("x264_session_"+s.name+"_cpu_per_frame_relock_command", c, "us")
		emit("x264_session_"+s.name+"_cpu_ratio_relock_gop_vs_command", g/c, "x")
		emit("x264_session_"+s.name+"_cost_per_session", (g-c)*float64(s.gop)/1000, "ms")
	}
}
