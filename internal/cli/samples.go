package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tributary-dev/tributary/internal/joinsim"
)

// samples writes sample join input files.
func samples(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "join" {
		return errors.New("usage: starter samples join -out DIR")
	}
	fs := flag.NewFlagSet("samples join", flag.ContinueOnError)
	dir := fs.String("out", "samples/join", "directory to write sim_file1.xlsx, sim_file2.csv and sim_file3.csv to")
	rows := fs.Int("rows", 50, "rows per file")
	seed := fs.Uint64("seed", 7, "random seed")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := joinsim.WriteSamples(*dir, *rows, *seed); err != nil {
		return fmt.Errorf("write samples to %s: %w", *dir, err)
	}
	fmt.Fprintf(out, "wrote 3 files of %d rows to %s\n", *rows, *dir)
	return nil
}
