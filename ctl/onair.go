package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"onair/web/api"
)

// liveCmd is `onairctl live`: go on air (the encoders are warm, so it takes
// one connect and one GOP).
func liveCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:   "live",
		Short: "Go on air (after a stop, or with onair.autostart off)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.OnAirStatus, error) {
				return c.SetOnAir(ctx, true)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "on air: %s (%s)\n", st.Phase, st.Reason)
			return err
		},
	}
}

// stopCmd is `onairctl stop --yes`: end the show cleanly. Without --yes it
// refuses, so a command recalled from the shell history cannot end a show.
func stopCmd(socket *string) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "stop --yes",
		Short: "End the stream cleanly (last GOP, TS end, SRT drained); the encoders stay warm",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes {
				return errors.New("stop ends the show for the viewers: say onairctl stop --yes")
			}
			st, err := call(cmd.Context(), *socket, func(c *api.Client, ctx context.Context) (api.OnAirStatus, error) {
				return c.SetOnAir(ctx, false)
			})
			if err != nil {
				return err
			}
			return printOnAir(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really stop the stream")
	return cmd
}

func printOnAir(w io.Writer, st api.OnAirStatus) error {
	fmt.Fprintf(w, "on air: %s (%s) since %s\n", st.Phase, st.Reason, st.Since.Format(time.TimeOnly))
	if e := st.LastEnd; e != nil {
		drained := "drained"
		if !e.Drained {
			drained = "NOT drained"
		}
		fmt.Fprintf(w, "last end: %s at %s, last frame %d, %s, took %.0f ms", e.Reason, e.At.Format(time.TimeOnly), e.LastIndex, drained, e.TookMs)
		if e.Error != "" {
			fmt.Fprintf(w, ": %s", e.Error)
		}
		fmt.Fprintln(w)
	}
	return nil
}
