// Package ctl is onairctl: the maintenance commands an engineer runs over SSH.
// Every command is a client of onaird's local API (the same endpoints the web
// page uses), reached over the unix socket api.socket.
//
// Not for: anything onaird does not expose through its API.
package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"onair/daemon"
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
	root.AddCommand(statusCmd(&socket), failoverCmd(&socket), bitrateCmd(&socket))
	return root
}

type client struct{ hc *http.Client }

func newClient(socket string) *client {
	return &client{hc: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}},
	}}
}

func (c *client) do(ctx context.Context, method, path string) ([]byte, error) {
	return c.send(ctx, method, path, nil)
}

func (c *client) send(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://onaird"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is onaird running? %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s", e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return b, nil
}

func statusCmd(socket *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the state of the box: children, encoders, output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := newClient(*socket).do(cmd.Context(), http.MethodGet, "/api/status")
			if err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(b)
				return err
			}
			var st daemon.Status
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("decode status: %w", err)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return cmd
}

func printStatus(w io.Writer, st daemon.Status) error {
	sw := st.Video.Switch
	fmt.Fprintf(w, "onair %s  %s  up %s\n", st.Version, strings.ToUpper(st.State), time.Duration(st.Uptime*float64(time.Second)).Round(time.Second))
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
	fmt.Fprintf(w, "audio    frames %d  gaps %d\n\n", st.Audio.Frames, st.Audio.GapFrames)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHILD\tROLE\tPID\tSTATE\tRESTARTS\tLAG\tLAST ERROR")
	for _, c := range st.Children {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\n", c.Name, c.Role, c.PID, c.State, c.Restarts, c.LagFrames, c.LastError)
	}
	return tw.Flush()
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
			b, err := newClient(*socket).do(cmd.Context(), http.MethodPost, "/api/failover/video")
			if err != nil {
				return err
			}
			var r struct{ Result, Target, Detail string }
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("failover: unreadable answer from onaird: %w", err)
			}
			if r.Result == "pending" {
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
			b, err := newClient(*socket).send(cmd.Context(), http.MethodPost, "/api/video/bitrate",
				strings.NewReader(fmt.Sprintf(`{"kbps":%d}`, kbps)))
			if err != nil {
				return err
			}
			var r struct {
				AtIndex uint64 `json:"at_index"`
			}
			_ = json.Unmarshal(b, &r)
			fmt.Fprintf(cmd.OutOrStdout(), "video bitrate %d kbit/s from frame %d\n", kbps, r.AtIndex)
			return nil
		},
	}
}
