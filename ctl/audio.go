package ctl

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"onair/web/api"
)

// audioCmd is `onairctl audio` (show the chains and the selector) and
// `onairctl audio main|backup|auto` (force a chain, or let the box decide).
func audioCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:   "audio [main|backup|auto]",
		Short: "Show the audio chains and which one is on air; force main or backup, or back to auto",
		Long: "Without an argument: the audio chains (state, levels, device rate) and the selector (mode, active chain, last switches).\n" +
			"main or backup forces that chain (it still falls back to the other while the forced one is missing); auto lets the box decide.",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"main", "backup", "auto"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				st, err := call(cmd.Context(), *socket, (*api.Client).Status)
				if err != nil {
					return err
				}
				return printAudio(cmd.OutOrStdout(), st.Audio)
			}
			m := api.AudioMode(args[0])
			switch m {
			case api.AudioMain, api.AudioBackup, api.AudioAuto:
			default:
				return fmt.Errorf("audio %q: say main, backup or auto", args[0])
			}
			st, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.AudioStatus, error) {
				return c.SetAudioSource(ctx, m)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "audio mode %s: on air %s (%s)\n", st.Mode, orNone(st.Active), st.Reason)
			return err
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func printAudio(w io.Writer, a api.AudioStatus) error {
	fmt.Fprintf(w, "audio    mode %s  on air %s (%s)  switches %d  frames %d  missing %d  filled %d\n\n",
		a.Mode, orNone(a.Active), a.Reason, a.Switches, a.Frames, a.Missing+a.GapFrames, a.Filled)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHAIN\tSTATE\tPEAK dBFS\tRMS dBFS\tHEALTHY s\tRATE ppm\tOFFSET ms\tDELAY ms\tPLAYED\tLATE")
	for _, c := range a.Chains {
		rate := "-"
		if c.RateMeasured {
			rate = fmt.Sprintf("%+.0f", c.RatePPM)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.0f\t%s\t%.1f\t%.0f\t%d\t%d\n", c.Name, c.State, c.PeakDBFS, c.RMSDBFS,
			c.HealthyS, rate, c.OffsetMs, c.DelayMs, c.Played, c.Late)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(a.LastSwitches) > 0 {
		fmt.Fprintln(w, "\nlast switches:")
		for _, s := range a.LastSwitches {
			fmt.Fprintf(w, "  %s  frame %d  %s → %s  %s\n", s.At.Format(time.TimeOnly), s.Index, s.From, s.To, s.Reason)
		}
	}
	return nil
}
