package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"onair/web/api"
)

// powerCmd is `onairctl power`: the UPS, the power signals, the policy and
// the CPU temperature.
func powerCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:   "power",
		Short: "Show the power: UPS (NUT), power signals, what the policy decided, CPU temperature",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := call(cmd.Context(), *socket, (*api.Client).Status)
			if err != nil {
				return err
			}
			return printPower(cmd.OutOrStdout(), st)
		},
	}
}

func printPower(w io.Writer, st api.Status) error {
	p := st.Power
	if p == nil {
		fmt.Fprintln(w, "power    not configured (no power.nut, no power GPIO line)")
	} else {
		fmt.Fprintf(w, "power    %s  on %s  since %s  %s\n", p.State, p.Source, p.Since.Format(time.TimeOnly), p.Reason)
		if p.Shedding {
			fmt.Fprintln(w, "         shedding load: the bitrate is capped")
		}
		if !p.Deadline.IsZero() {
			fmt.Fprintf(w, "         the stream ends at %s unless power returns\n", p.Deadline.Format(time.TimeOnly))
		}
		if !p.EndedAt.IsZero() {
			fmt.Fprintf(w, "         stream ended for power at %s; powered off: %v %s\n", p.EndedAt.Format(time.TimeOnly), p.PoweredOff, p.PowerOffError)
		}
		if u := p.UPS; u != nil {
			reach := "reachable"
			if !u.Reachable {
				reach = "UNREACHABLE"
			}
			fmt.Fprintf(w, "ups      %s  %s  status %s  charge %s  runtime %s", u.Name, reach, strings.Join(u.Status, " "), orDash(u.ChargePct, "%.0f %%"), orDash(u.RuntimeS, "%.0f s"))
			if u.LastError != "" {
				fmt.Fprintf(w, "  error: %s", u.LastError)
			}
			fmt.Fprintln(w)
		}
		for _, s := range p.Signals {
			fmt.Fprintf(w, "signal   %s (line %s): active %v\n", s.Name, s.Line, s.Active)
		}
	}
	if th := st.Thermal; th != nil {
		hot := ""
		if th.Hot {
			hot = "  HOT: load shed"
		}
		fmt.Fprintf(w, "thermal  %.1f °C (warn at %.0f °C)%s\n", th.MaxC, th.WarnC, hot)
	}
	return nil
}

func orDash(v float64, format string) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// panelCmd is `onairctl panel` (the LEDs) and `onairctl panel press BUTTON
// [--long]` (what the crew's finger does).
func panelCmd(socket *string) *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "panel [press BUTTON [--long]]",
		Short: "Show the front panel's LEDs, or press one of its buttons",
		Long: "Without arguments: every LED with its pattern and meaning, and the buttons.\n" +
			"press BUTTON presses one: go_live (short: go live; --long: stop), failover, audio (backup, again: auto).",
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				st, err := call(cmd.Context(), *socket, (*api.Client).Status)
				if err != nil {
					return err
				}
				return printPanel(cmd.OutOrStdout(), st.Panel)
			}
			if args[0] != "press" || len(args) != 2 {
				return errors.New("say onairctl panel, or onairctl panel press BUTTON [--long]")
			}
			r, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.PanelPressResult, error) {
				return c.PanelPress(ctx, args[1], long)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", r.Button, r.Action)
			return err
		},
	}
	cmd.Flags().BoolVar(&long, "long", false, "a long press (go_live: stop)")
	return cmd
}

func printPanel(w io.Writer, p *api.PanelStatus) error {
	if p == nil {
		_, err := fmt.Fprintln(w, "no front panel")
		return err
	}
	kind := "GPIO"
	if p.Virtual {
		kind = "virtual (no GPIO): press with onairctl panel press BUTTON"
	}
	fmt.Fprintf(w, "panel    %s\n", kind)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LED\tPATTERN\tMEANING")
	for _, l := range p.LEDs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.Pattern, l.Meaning)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "buttons  %s\n", strings.Join(p.Buttons, ", "))
	if p.LastPress != "" {
		fmt.Fprintf(w, "last press: %s at %s\n", p.LastPress, p.LastPressAt.Format(time.TimeOnly))
	}
	return nil
}
