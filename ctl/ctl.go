// Package ctl is onairctl: the maintenance commands an engineer runs over SSH.
// Every command is a client of onaird's local API (the same endpoints the web
// page uses), reached over the unix socket api.socket.
//
// Not for: anything onaird does not expose through its API.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"onair/internal/version"
	"onair/web/api"
)

// DefaultSocket is where onaird listens unless api.socket says otherwise.
const DefaultSocket = "/run/onair/onaird.sock"

// NormalizeArgs accepts the single-dash long flags operators type out of
// habit (`onairctl status -json`) by rewriting them to the double-dash form.
func NormalizeArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if len(a) > 3 && a[0] == '-' && a[1] != '-' && !strings.Contains(a[1:], "-") {
			out[i] = "-" + a
			continue
		}
		out[i] = a
	}
	return out
}

// Root returns the onairctl command tree.
func Root() *cobra.Command {
	var socket string
	root := &cobra.Command{
		Use:           "onairctl",
		Short:         "Maintain an onair field encoder from an SSH session",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := DefaultSocket
	if s := os.Getenv("ONAIR_SOCKET"); s != "" {
		def = s
	}
	root.PersistentFlags().StringVar(&socket, "socket", def, "onaird API socket (env ONAIR_SOCKET)")
	root.AddCommand(statusCmd(&socket), failoverCmd(&socket), bitrateCmd(&socket), uplinksCmd(&socket), uplinkCmd(&socket), audioCmd(&socket),
		liveCmd(&socket), stopCmd(&socket), powerCmd(&socket), panelCmd(&socket), eventsCmd(&socket), logsCmd(&socket),
		recordCmd(&socket), setupTokenCmd(&socket), passwdCmd(&socket), restartCmd(&socket), configCmd(&socket), canaryCmd(&socket), updateCmd(&socket), versionCmd())
	return root
}

// call runs f with a client of the socket; an unreachable onaird is said so.
func call[T any](ctx context.Context, socket string, f func(*api.Client, context.Context) (T, error)) (T, error) {
	v, err := f(api.NewUnixClient(socket), ctx)
	var se *api.StatusError
	if err != nil && !errors.As(err, &se) {
		return v, fmt.Errorf("is onaird running? %w", err)
	}
	return v, err
}

func statusCmd(socket *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the state of the box: children, encoders, output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				b, err := call(cmd.Context(), *socket, (*api.Client).RawStatus)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			st, err := call(cmd.Context(), *socket, (*api.Client).Status)
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return cmd
}

func printStatus(w io.Writer, st api.Status) error {
	sw := st.Video.Switch
	fmt.Fprintf(w, "onair %s  %s  up %s  (%s: %s)\n", st.Version, strings.ToUpper(string(st.State)), time.Duration(st.Uptime*float64(time.Second)).Round(time.Second),
		st.OnAir.Phase, st.OnAir.Reason)
	o := st.Output
	fmt.Fprintf(w, "output   %s  %s  %d kbit/s  connects %d", o.State, o.Peer, int(o.SendRateKbps), o.Connects)
	if o.LastError != "" {
		fmt.Fprintf(w, "  last error: %s", o.LastError)
	}
	fmt.Fprintln(w)
	lock := "single encoder"
	if sw.Twins {
		lock = "UNLOCKED"
		if sw.Locked {
			lock = "locked"
		}
	}
	fmt.Fprintf(w, "video    active %s  %s  frames %d  gaps %d  switches %d  mismatches %d  signal %s  latency p50 %.1f ms p99 %.1f ms\n",
		sw.Active, lock, sw.Emitted, sw.GapFrames, sw.Switches, sw.Mismatches, st.Video.Keeper.Signal, st.Video.LatencyP50Ms, st.Video.LatencyP99Ms)
	fmt.Fprintf(w, "audio    frames %d  gaps %d\n", st.Audio.Frames, st.Audio.GapFrames)
	if r := st.Recording; r != nil {
		printRecording(w, *r)
	}
	if c := st.Canary; c != nil && c.State != api.CanaryIdle {
		fmt.Fprintf(w, "canary   %s  %s  %s  %s\n", c.State, c.Encoder, c.Worker, c.Reason)
	}
	if tn := st.Tunnel; tn != nil {
		fmt.Fprintf(w, "tunnel   %s  %s  remote port %d  connects %d  sessions %d", tn.State, tn.Target, tn.RemotePort, tn.Connects, tn.Sessions)
		if tn.LastError != "" && tn.State != api.TunnelUp {
			fmt.Fprintf(w, "  last error: %s", tn.LastError)
		}
		fmt.Fprintln(w)
	}
	if p := st.Page; p != nil {
		fmt.Fprintf(w, "page     auth %s", p.Auth)
		if p.Listen != "" {
			fmt.Fprintf(w, "  http://%s", p.Listen)
		}
		if p.HTTPS != "" {
			fmt.Fprintf(w, "  https %s  certificate %s", p.HTTPS, p.Fingerprint)
		}
		if p.AuthError != "" {
			fmt.Fprintf(w, "  %s", p.AuthError)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHILD\tROLE\tPID\tSTATE\tRESTARTS\tLAG\tMARGIN\tWORKER\tLAST ERROR")
	for _, c := range st.Children {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", c.Name, c.Role, c.PID, c.State, c.Restarts, c.LagFrames, marginText(c), filepath.Base(c.Binary), c.LastError)
	}
	if len(st.Components) > 0 {
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t")
		fmt.Fprintln(tw, "COMPONENT\tVITAL\t\tSTATE\tRESTARTS\t\t\t\tLAST ERROR")
		for _, c := range st.Components {
			fmt.Fprintf(tw, "%s\t%v\t\t%s\t%d\t\t\t\t%s\n", c.Name, c.Vital, c.State, c.Restarts, c.LastError)
		}
	}
	return tw.Flush()
}

// marginText is an encoder's real-time margin as the crew reads it: "2.4x
// (min 1.9x)", times faster than real time now and at its lowest of the
// last 10 s; "-" until it is measured, "" for other roles.
func marginText(c api.ChildStatus) string {
	switch {
	case c.Role != "encode":
		return ""
	case c.Margin <= 0:
		return "-"
	}
	return fmt.Sprintf("%.1fx (min %.1fx)", c.Margin, c.MarginMin)
}

func failoverCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:       "failover video",
		Short:     "Swap the active encoder (no gap while the twins are locked)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"video"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "video" {
				return fmt.Errorf("failover %q: only \"video\" can fail over", args[0])
			}
			r, err := call(cmd.Context(), *socket, (*api.Client).FailoverVideo)
			if err != nil {
				return err
			}
			if r.Result == api.FailoverPending {
				fmt.Fprintf(cmd.OutOrStdout(), "video failover pending: %s\n", r.Detail)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "video failover done: %s is active\n", r.Target)
			return nil
		},
	}
}

func bitrateCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:   "bitrate KBPS",
		Short: "Change the video bitrate of both encoders at the same frame (the twins stay locked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kbps, err := strconv.Atoi(args[0])
			if err != nil {
				return fmt.Errorf("bitrate %q: not a number of kbit/s", args[0])
			}
			r, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.BitrateResult, error) {
				return c.SetVideoBitrate(ctx, kbps)
			})
			if err != nil {
				return err
			}
			if r.Result == api.BitrateCeiling {
				fmt.Fprintf(cmd.OutOrStdout(), "adaptive bitrate ceiling %d kbit/s: the bitrate follows the network up to it\n", kbps)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "video bitrate %d kbit/s from frame %d\n", kbps, r.AtIndex)
			return nil
		},
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print onairctl's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Version)
			return err
		},
	}
}
