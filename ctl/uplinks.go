package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"onair/web/api"
)

func uplinksCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:   "uplinks",
		Short: "Show the bonded uplinks: state, RTT, loss, throughput, data used; the SRTLA group; the bitrate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := call(cmd.Context(), *socket, (*api.Client).Status)
			if err != nil {
				return err
			}
			if st.Bond == nil {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "not bonded: output %s goes out by the main routing table\n", st.Output.Target)
				return err
			}
			return printUplinks(cmd.OutOrStdout(), *st.Bond)
		},
	}
}

func printUplinks(w io.Writer, b api.BondStatus) error {
	group := string(b.Group)
	if !b.OutageSince.IsZero() {
		group += " since " + b.OutageSince.Format(time.TimeOnly)
	}
	fmt.Fprintf(w, "srtla    %s  group %s  registrations %d\n", b.Receiver, group, b.Registers)
	br := b.Bitrate
	mode := "fixed"
	if br.ABR {
		mode = fmt.Sprintf("adaptive %d..%d", br.MinKbps, br.MaxKbps)
	}
	fmt.Fprintf(w, "bitrate  %d kbit/s  %s  last change: %s\n\n", br.Kbps, mode, br.Reason)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPLINK\tIFACE\tPOLICY\tSTATE\tCARRY\tADDRESS\tRTT ms\tLOSS %\tkbit/s\tSENT\tLAST ERROR")
	for _, u := range b.Uplinks {
		sent := mb(u.BytesSent)
		if u.CapBytes > 0 {
			sent += " / " + mb(u.CapBytes)
		}
		carry := "-"
		if u.Carrying {
			carry = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t%.0f\t%s\t%s\n", u.Name, u.Interface, u.Policy, u.State,
			carry, strings.Join(u.Addresses, ","), u.RTTms, u.LossPct, u.ThroughputKbps, sent, u.LastError)
	}
	return tw.Flush()
}

func mb(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func uplinkCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:       "uplink NAME enable|disable",
		Short:     "Enable or disable one uplink without a gap (the others carry the stream)",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"enable", "disable"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var on bool
			switch args[1] {
			case "enable":
				on = true
			case "disable":
			default:
				return fmt.Errorf("uplink %s %q: say enable or disable", args[0], args[1])
			}
			u, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.UplinkStatus, error) {
				return c.SetUplink(ctx, args[0], on)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "uplink %s %sd: %s\n", u.Name, args[1], u.State)
			return err
		},
	}
}
