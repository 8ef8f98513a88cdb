package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"onair/web/api"
)

// eventsCmd is `onairctl events [--since 2h]`: the post-event report.
func eventsCmd(socket *string) *cobra.Command {
	var since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events [--since 2h|RFC3339]",
		Short: "Print the post-event report: failovers, restarts, uplink, power, config and login changes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.EventsResponse, error) {
				return c.Events(ctx, since, 0)
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			if r.Lost > 0 {
				fmt.Fprintf(w, "(%d older events are no longer kept)\n", r.Lost)
			}
			if len(r.Events) == 0 {
				_, err = fmt.Fprintln(w, "no events")
				return err
			}
			for _, e := range r.Events {
				printEvent(w, e)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only the newest part: a duration (2h, 30m) or an RFC 3339 time")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return cmd
}

func printEvent(w io.Writer, e api.Event) {
	frame := ""
	if e.Frame != nil {
		frame = fmt.Sprintf(" @frame %d", *e.Frame)
	}
	subject := ""
	if e.Subject != "" {
		subject = " " + e.Subject
	}
	fmt.Fprintf(w, "%s  #%-4d %-15s%s%s: %s\n", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Seq, e.Kind, subject, frame, e.Reason)
}

// logsCmd is `onairctl logs [-f] [-n 100]`: onaird's newest log lines.
func logsCmd(socket *string) *cobra.Command {
	var follow bool
	var n int
	cmd := &cobra.Command{
		Use:   "logs [-f] [-n COUNT]",
		Short: "Print onaird's newest log lines (-f: keep printing new ones until Ctrl-C)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			after := uint64(0)
			for first := true; ; first = false {
				count := n
				if !first {
					count = 0
				}
				r, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.LogsResponse, error) {
					return c.Logs(ctx, after, count)
				})
				if err != nil {
					return err
				}
				if !first && len(r.Lines) > 0 && r.Lines[0].Seq > after+1 {
					fmt.Fprintf(w, "(%d lines missed: they fell off onaird's log tail)\n", r.Lines[0].Seq-after-1)
				}
				for _, l := range r.Lines {
					printLogLine(w, l)
					after = l.Seq
				}
				if !follow {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&n, "lines", "n", 100, "how many of the newest lines first")
	return cmd
}

func printLogLine(w io.Writer, l api.LogLine) {
	fields := ""
	if l.Fields != "" {
		fields = "  " + l.Fields
	}
	fmt.Fprintf(w, "%s  %-5s  %s  %s%s\n", l.Time.Local().Format("15:04:05.000"), strings.ToUpper(l.Level), l.Logger, l.Msg, fields)
}

// recordCmd is `onairctl record start|stop`.
func recordCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:       "record start|stop",
		Short:     "Start or stop the local recording (the ISO backup); the stream is not touched",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"start", "stop"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var on bool
			switch args[0] {
			case "start":
				on = true
			case "stop":
			default:
				return fmt.Errorf("record %q: say record start or record stop", args[0])
			}
			st, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.RecordingStatus, error) {
				return c.SetRecording(ctx, on)
			})
			if err != nil {
				return err
			}
			printRecording(cmd.OutOrStdout(), st)
			return nil
		},
	}
}

func printRecording(w io.Writer, r api.RecordingStatus) {
	fmt.Fprintf(w, "recording  %s (%s) in %s", r.State, r.Reason, r.Dir)
	if r.File != "" {
		fmt.Fprintf(w, "  file %s (%d bytes)", r.File, r.FileBytes)
	} else if r.WaitingKeyframe {
		fmt.Fprint(w, "  waiting for a keyframe")
	}
	fmt.Fprintf(w, "  segments %d  bytes %d", r.Segments, r.Bytes)
	if r.BytesDropped > 0 {
		fmt.Fprintf(w, "  DROPPED %d bytes in %d gaps", r.BytesDropped, r.Gaps)
	}
	if r.LastError != "" {
		fmt.Fprintf(w, "  last error: %s", r.LastError)
	}
	fmt.Fprintln(w)
}

// setupTokenCmd is `onairctl setup-token`: the one-time token of the page's
// first setup (SSH to the box is what proves the right to it).
func setupTokenCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:   "setup-token",
		Short: "Print the web page's one-time setup token (while no password is set)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := call(cmd.Context(), *socket, (*api.Client).SetupToken)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
}

// passwdCmd is `onairctl passwd`: set the page's password without the old
// one. It asks twice on a terminal; --stdin reads one line (scripts).
func passwdCmd(socket *string) *cobra.Command {
	var stdin bool
	cmd := &cobra.Command{
		Use:   "passwd [--stdin]",
		Short: "Set the web page's password (the old one is not needed: SSH is the authentication)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd, stdin)
			if err != nil {
				return err
			}
			if _, err = call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (struct{}, error) {
				return struct{}{}, c.Passwd(ctx, pw)
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "password set: log in to the page with it")
			return err
		},
	}
	cmd.Flags().BoolVar(&stdin, "stdin", false, "read the password from one line of standard input")
	return cmd
}

func readPassword(cmd *cobra.Command, stdin bool) (string, error) {
	in := cmd.InOrStdin()
	f, isFile := in.(*os.File)
	if stdin || !isFile || !term.IsTerminal(int(f.Fd())) { //nolint:gosec // a file descriptor fits an int
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("passwd: read: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("passwd: no password given")
		}
		return pw, nil
	}
	fd := int(f.Fd()) //nolint:gosec // a file descriptor fits an int
	ask := func(prompt string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	a, err := ask("new password: ")
	if err != nil {
		return "", fmt.Errorf("passwd: %w", err)
	}
	b, err := ask("again: ")
	if err != nil {
		return "", fmt.Errorf("passwd: %w", err)
	}
	if a != b {
		return "", errors.New("passwd: the two passwords differ; nothing changed")
	}
	return a, nil
}

// restartCmd is `onairctl restart NAME [--yes]`: one child or component,
// the stream kept.
func restartCmd(socket *string) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "restart CHILD|COMPONENT [--yes]",
		Short: "Restart one child (encoder-a, capture, audio-backup…) or component (recording, tunnel…), the stream kept",
		Long: "Restart one child process or in-process component; onairctl status lists them. An encoder's restart is\n" +
			"hitless while the twins are locked. The output and the uplinks (bond) reconnect the stream when restarted:\n" +
			"they need --yes. The cadence is vital and cannot be restarted.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.RestartResult, error) {
				return c.Restart(ctx, args[0], yes)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s restarted\n", r.Kind, r.Name)
			return err
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "also when the restart reconnects the stream (output, bond)")
	return cmd
}

// configCmd is `onairctl config validate|apply FILE`.
func configCmd(socket *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config validate|apply FILE",
		Short: "Check a configuration file against the running box, or apply it (live keys now, the rest at the next restart)",
	}
	run := func(dryRun bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("config: %w", err)
			}
			r, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.ConfigResult, error) {
				return c.ApplyConfig(ctx, raw, dryRun)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			verb, later := "applied live", "saved; take effect when onaird restarts"
			if dryRun {
				verb, later = "would apply live", "would need a restart of onaird"
				fmt.Fprintf(w, "%s: valid\n", args[0])
			}
			if len(r.Live) == 0 && len(r.Restart) == 0 {
				_, err = fmt.Fprintln(w, "no change from the running configuration")
				return err
			}
			if len(r.Live) > 0 {
				fmt.Fprintf(w, "%s: %s\n", verb, strings.Join(r.Live, ", "))
			}
			if len(r.Restart) > 0 {
				fmt.Fprintf(w, "%s: %s\n", later, strings.Join(r.Restart, ", "))
			}
			if r.Saved != "" {
				fmt.Fprintf(w, "saved to %s\n", r.Saved)
			}
			return nil
		}
	}
	cmd.AddCommand(&cobra.Command{Use: "validate FILE", Short: "Check FILE (every bad key named); change nothing",
		Args: cobra.ExactArgs(1), RunE: run(true)})
	cmd.AddCommand(&cobra.Command{Use: "apply FILE", Short: "Apply FILE atomically: refused whole if a key is bad; live keys change without a gap",
		Args: cobra.ExactArgs(1), RunE: run(false)})
	return cmd
}

// canaryCmd is `onairctl canary WORKER [--wait]`: a new onair-av on air,
// the standby encoder first.
func canaryCmd(socket *string) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "canary WORKER [--wait]",
		Short: "Try a new onair-av on air: the standby encoder first, promoted after update.canary_after, rolled back if it fails",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			worker, err := filepath.Abs(args[0])
			if err != nil {
				return fmt.Errorf("canary: %w", err)
			}
			st, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.CanaryStatus, error) {
				return c.StartCanary(ctx, worker)
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "canary %s: %s\n", st.State, worker)
			if !wait {
				_, err = fmt.Fprintln(w, "follow it with onairctl status or onairctl events")
				return err
			}
			last := st.State
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				s, err := call(cmd.Context(), *socket, (*api.Client).Status)
				if err != nil {
					return err
				}
				c := s.Canary
				if c == nil || c.State == last {
					continue
				}
				last = c.State
				fmt.Fprintf(w, "canary %s %s %s\n", c.State, c.Encoder, c.Reason)
				switch c.State {
				case api.CanaryPromoted:
					return nil
				case api.CanaryRolledBack, api.CanaryFailed:
					return fmt.Errorf("canary %s: %s", c.State, c.Reason)
				}
			}
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "print each step until it is promoted or rolled back")
	return cmd
}

// updateCmd is `onairctl update BUNDLE [--force|--at-stop] [--allow-downgrade]`.
func updateCmd(socket *string) *cobra.Command {
	var req api.UpdateRequest
	var noWait bool
	cmd := &cobra.Command{
		Use:   "update BUNDLE [--at-stop|--force] [--allow-downgrade]",
		Short: "Install a signed update bundle into the inactive root slot; the next boot tries it and rolls back if it is not healthy",
		Long: "Verifies the bundle's signature and every hash before a byte is written, writes the inactive slot, reads it back,\n" +
			"and sets a trial boot. After the reboot onaird marks the slot good once the box has been healthy for\n" +
			"update.healthy_after; a slot that does not get there, or fails to boot update.max_tries times, is abandoned\n" +
			"and the old one boots again. Refused while on air: --at-stop installs when the crew next stops, --force now.\n" +
			"Refused unless the bundle's version is newer than the running one (an old signed bundle replayed would bring\n" +
			"back what was fixed since; versions order as git describe of the v tags: rootfs/README.md): --allow-downgrade\n" +
			"installs an older one, or the same again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bundle, err := filepath.Abs(args[0])
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
			req.Bundle = bundle
			in, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.UpdateInstall, error) {
				return c.Update(ctx, req)
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "update %s: %s\n", in.State, bundle)
			if noWait {
				return nil
			}
			last := ""
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				st, err := call(cmd.Context(), *socket, (*api.Client).Status)
				if err != nil {
					return err
				}
				if st.Update == nil || st.Update.Install == nil {
					continue
				}
				i := st.Update.Install
				line := i.State
				if i.Total > 0 && i.State != "done" && i.State != "failed" {
					line = fmt.Sprintf("%s %d%%", i.State, i.Done*100/i.Total)
				}
				if line != last {
					fmt.Fprintf(w, "update %s\n", line)
					last = line
				}
				switch i.State {
				case "done":
					_, err = fmt.Fprintf(w, "%s written to slot %s: reboot to try it (it rolls back by itself if it is not healthy)\n", i.Version, i.Slot)
					return err
				case "failed":
					return fmt.Errorf("update failed: %s (the running slot still boots)", i.Error)
				}
			}
		},
	}
	cmd.Flags().BoolVar(&req.Force, "force", false, "install while on air")
	cmd.Flags().BoolVar(&req.AtStop, "at-stop", false, "install when the crew next stops the stream")
	cmd.Flags().BoolVar(&req.AllowDowngrade, "allow-downgrade", false, "install a bundle that is not newer than the running version")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the install has started")
	return cmd
}
