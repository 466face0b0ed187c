// Package cli is the starter command: it brings up the embedded stack, launches
// simulations with a progress bar, and prints their reports.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// Main runs the starter with its arguments and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "dev":
		err = dev(ctx, rest, stdout, log)
	case "demo":
		err = demo(ctx, rest, stdout, log)
	case "simulate":
		err = dispatch(ctx, cmd, map[string]command{
			"join": simulateJoin, "sensors": simulateSensors, "likes": simulateLikes, "transactions": simulateTransactions,
		}, rest, stdout, log)
	case "verify":
		err = dispatch(ctx, cmd, map[string]command{"transactions": verifyTransactions}, rest, stdout, log)
	case "samples":
		err = samples(rest, stdout)
	case "bench":
		err = dispatch(ctx, cmd, map[string]command{"all": benchAll, "join": benchJoin, "windows": benchWindows, "sensors": benchSensors, "ceiling": benchCeiling}, rest, stdout, log)
	case "workers":
		err = Workers(ctx, rest, stdout, log)
	case "chaos":
		err = chaosRun(ctx, rest, stdout, log)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "starter: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "starter %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// command is one subcommand of the starter, run with the arguments after its name.
type command func(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error

// dispatch runs the subcommand of parent that args[0] names.
func dispatch(ctx context.Context, parent string, cmds map[string]command, args []string, out io.Writer, log *slog.Logger) error {
	if len(args) > 0 {
		if c, ok := cmds[args[0]]; ok {
			return c(ctx, args[1:], out, log)
		}
	}
	return fmt.Errorf("usage: starter %s %s [flags]", parent, strings.Join(slices.Sorted(maps.Keys(cmds)), "|"))
}

func usage(w io.Writer) {
	fmt.Fprint(w, strings.TrimLeft(`
starter: run Tributary's embedded stack and its simulations.

  starter demo                 start the embedded stack, run a join simulation, print its report,
                               and keep the stack up for the Temporal UI until Ctrl-C
  starter dev                  start the embedded stack (Kafka-protocol broker, Temporal + UI,
                               worker, bridge) until Ctrl-C
  starter simulate join        send join rows to a running stack and report acks and delays
  starter simulate sensors     send travelers crossing sensors in real time, with noise, disorder
                               and bad readings, and compare their stored visits with the truth
  starter simulate likes       send likes for videos, Zipf-skewed, and show the top videos
  starter simulate transactions -n N
                               send transactions whose window sums are known
  starter verify transactions  recompute every closed window from the topic and compare
  starter samples join -out D  write sample input files shaped like sim_file1..3
  starter bench all|join|windows|sensors
                               measure a pipeline on fresh embedded stacks
  starter workers -role R      run a role (worker, bridge, api, all) against a running stack,
                               as the workers command does
  starter chaos                run the stack and a second bridge and worker as processes, kill
                               them with SIGKILL from a seed under load, and compare the outputs
                               with the inputs

Run "starter COMMAND -h" for a command's flags.
`, "\n"))
}
