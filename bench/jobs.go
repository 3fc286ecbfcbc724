package bench

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/seedbatch/seedbatch/seedance"
)

// promptChars is the length of every generated prompt.
const promptChars = 200

// promptFiller pads prompts to promptChars.
const promptFiller = " - a calm seaside sunrise; slow dolly in; waves and gulls; warm light on wet sand"

// prompt returns the prompt of job i: promptChars ASCII characters, unique
// to i, so that a prompt created twice shows in the duplicate count.
func prompt(i int) string {
	p := fmt.Sprintf("bench job %d", i)
	for len(p) < promptChars {
		p += promptFiller
	}
	return p[:promptChars]
}

// Every job's fixed fields, as the CSV file and the naive client send them.
const (
	jobResolution  = "720p"
	jobAspectRatio = "16:9"
)

// createRequest returns the create request the naive client sends for job
// i, a video of duration seconds.
func createRequest(i, duration int) seedance.CreateRequest {
	return seedance.CreateRequest{
		RequestType: seedance.RequestTypeAsync,
		Provider:    "auto",
		Input: seedance.Input{
			Mode: "text-to-video", Prompt: prompt(i), Resolution: jobResolution,
			Duration: duration, AspectRatio: jobAspectRatio,
		},
	}
}

// writeCSV writes rows jobs of duration seconds as a seedbatch CSV file:
// the same jobs as createRequest's.
func writeCSV(path string, rows, duration int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write jobs: %w", err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id,prompt,duration,resolution,aspect_ratio")
	for i := range rows {
		// Prompts hold no quote, comma or newline: no quoting needed.
		if strings.ContainsAny(prompt(i), "\",\n") {
			f.Close()
			return fmt.Errorf("write jobs: prompt %d needs quoting", i)
		}
		fmt.Fprintf(w, "job-%06d,%s,%d,%s,%s\n", i, prompt(i), duration, jobResolution, jobAspectRatio)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write jobs: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write jobs: %w", err)
	}
	return nil
}
