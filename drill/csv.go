package drill

import (
	"bufio"
	"fmt"
	"os"
)

// promptFiller pads prompts to a realistic length.
const promptFiller = " - a calm seaside sunrise; slow dolly in; waves and gulls; warm light on wet sand"

// promptPrefix starts every prompt of batch id.
func promptPrefix(id string) string { return "drill " + id + " row " }

// writeCSV writes rows rows of batch id, each with a prompt of its own (so
// that the simulator's ledger counts each row's creates), 4-second videos.
func writeCSV(path, id string, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write rows: %w", err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id,prompt,duration")
	for i := range rows {
		fmt.Fprintf(w, "r%06d,%s%d.%s,4\n", i, promptPrefix(id), i, promptFiller)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write rows: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write rows: %w", err)
	}
	return nil
}
