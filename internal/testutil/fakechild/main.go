// Command fakechild stands in for onair-av in supervisor tests. It is built
// at test time (testutil.BuildFakeChild) and misbehaves on request:
//
//	-mode=sleep          print "ready" to stderr, then sleep until killed (a
//	                     staller: runs, never makes progress)
//	-mode=crash          exit with -code immediately (a crash loop)
//	-mode=crashif        exit with -code if the file -if exists, else sleep
//	-mode=ignoresigterm  ignore SIGTERM and sleep; with -spawn, first start a
//	                     grandchild in the same process group doing the same
//	-mode=lines          print -n numbered lines ("line 0" …), alternating
//	                     stderr and stdout, then exit with -code
//
// With -report, every instance first writes "ready PID\n" to fd 3, after it
// has set up its signal handling (and its grandchild has reported).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "sleep", "sleep, crash, crashif, ignoresigterm or lines")
	code := flag.Int("code", 1, "exit code for crash, crashif and lines")
	ifFile := flag.String("if", "", "crashif: crash while this file exists")
	spawn := flag.Bool("spawn", false, "ignoresigterm: also start a grandchild")
	n := flag.Int("n", 10, "lines: how many lines")
	report := flag.Bool("report", false, `write "ready PID" to fd 3`)
	flag.Parse()

	switch *mode {
	case "sleep":
	case "crash":
		fmt.Fprintln(os.Stderr, "crashing")
		os.Exit(*code)
	case "crashif":
		if _, err := os.Stat(*ifFile); err == nil {
			fmt.Fprintln(os.Stderr, "crashing")
			os.Exit(*code)
		}
	case "ignoresigterm":
		signal.Ignore(syscall.SIGTERM)
		if *spawn {
			startGrandchild(*report)
		}
	case "lines":
		for i := range *n {
			w := os.Stderr
			if i%2 == 1 {
				w = os.Stdout
			}
			fmt.Fprintf(w, "line %d\n", i)
		}
		os.Exit(*code)
	default:
		fmt.Fprintf(os.Stderr, "fakechild: unknown mode %q\n", *mode)
		os.Exit(2)
	}
	if *report {
		fd3 := os.NewFile(3, "report")
		if _, err := fmt.Fprintf(fd3, "ready %d\n", os.Getpid()); err != nil {
			fmt.Fprintf(os.Stderr, "fakechild: report: %v\n", err)
			os.Exit(2)
		}
	}
	fmt.Fprintln(os.Stderr, "ready")
	for {
		// Not select{}: with no other goroutine that is a fatal "deadlock".
		time.Sleep(time.Hour)
	}
}

// startGrandchild starts this program again in -mode=ignoresigterm. It stays
// in our process group (no Setpgid) and is never waited for: it is the
// helper a crashing child leaves behind.
func startGrandchild(report bool) {
	args := []string{"-mode=ignoresigterm"}
	var extra []*os.File
	if report {
		args = append(args, "-report")
		extra = []*os.File{os.NewFile(3, "report")}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = extra
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "fakechild: start grandchild: %v\n", err)
		os.Exit(2)
	}
}
