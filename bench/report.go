package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/seedbatch/seedbatch/sim"
)

// Report is the outcome of a benchmark run.
type Report struct {
	// Machine describes where the run happened.
	Machine Machine
	// Redis says which Redis the run used, and its version.
	Redis string
	// Date is when the run started.
	Date time.Time
	// Config are the settings of the run, with defaults applied.
	Config Config
	// Rows are the scenarios, in the order they ran.
	Rows []Row
	// Enqueue is the enqueue measurement; nil when skipped.
	Enqueue *EnqueueLine
	// LoadStart and LoadEnd are the system's load averages over 1, 5 and
	// 15 minutes when the run started and ended ("" when unknown): other
	// work on the machine shows in the wall and CPU figures.
	LoadStart, LoadEnd string
}

// Machine describes the machine a run happened on.
type Machine struct {
	// CPU is the CPU model and CPUs is the number of logical CPUs.
	CPU  string
	CPUs int
	// GOMAXPROCS is this process's, and GoVersion the toolchain's.
	GOMAXPROCS int
	GoVersion  string
	OS         string
}

// thisMachine reads the CPU model and count from /proc/cpuinfo, falling
// back to the runtime's count.
func thisMachine() Machine {
	m := Machine{CPU: "unknown", CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if m.CPU == "unknown" {
				m.CPU = strings.TrimSpace(v)
			}
		}
	}
	if n > 0 {
		m.CPUs = n
	}
	return m
}

// loadAverage returns the first three fields of /proc/loadavg, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Failed reports whether a scenario or the enqueue line failed.
func (r *Report) Failed() bool {
	for _, row := range r.Rows {
		if row.Err != nil {
			return true
		}
	}
	return r.Enqueue != nil && r.Enqueue.Err != nil
}

// tableHeader are the columns of the scenario table.
var tableHeader = []string{"scenario", "workers", "jobs", "busy utilization", "requests per job",
	"lag p50 / p99 (provider s)", "refill p50 / p99 (provider s)", "peak in flight", "429 answers", "duplicate creates",
	"worker CPU ms per job", "Redis commands per job", "Redis bytes per job", "wall time"}

// WriteMarkdown writes the report as Markdown: a header with the machine
// and the settings, the scenario table with its notes, and the enqueue line.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	c := r.Config
	m := r.Machine
	fmt.Fprintf(bw, "## seedbatch bench, %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(bw, "- Machine: %s, %d CPUs, GOMAXPROCS %d, %s, %s\n", m.CPU, m.CPUs, m.GOMAXPROCS, m.GoVersion, m.OS)
	fmt.Fprintf(bw, "- Redis: %s\n", r.Redis)
	if r.LoadStart != "" && r.LoadEnd != "" {
		fmt.Fprintf(bw, "- Load average (1, 5, 15 min): %s at the start, %s at the end\n", r.LoadStart, r.LoadEnd)
	}
	if c.Command != "" {
		fmt.Fprintf(bw, "- Command: `%s`\n", c.Command)
	}
	lo, hi, _ := sim.GenerationTime(c.Duration)
	fmt.Fprintf(bw, "- Jobs: %d videos of %d s each (distinct %d-character prompts); time scale %s: every provider "+
		"timing divided by it, the request limit multiplied by it\n", c.Jobs, c.Duration, promptChars, formatScale(c.TimeScale))
	fmt.Fprintf(bw, "- Provider: a fresh simulator per scenario with the provider's limits (%d tasks in flight, "+
		"%d requests a minute) and generation times (%v–%v for %d s videos, %v–%v at this scale)\n",
		sim.MaxInFlightDefault, sim.RequestsPerMinuteDefault, lo, hi, c.Duration,
		scaledDuration(lo, c.TimeScale), scaledDuration(hi, c.TimeScale))
	fmt.Fprintf(bw, "- baseline: the naive client in this process: %d local slots, a local %d/min token bucket "+
		"(burst 1), create, wait %v, then a status read every %v until the end; a 429 waits %v (all divided by the "+
		"time scale); no downloads\n", sim.MaxInFlightDefault, sim.RequestsPerMinuteDefault,
		naiveFirstPoll, naivePollInterval, naiveBackoff)
	fmt.Fprintf(bw, "- polling, callback: `seedbatch enqueue` of the jobs as a CSV file, then the given number of "+
		"`seedbatch worker` processes with limits.max_in_flight %d, limits.requests_per_minute %d, "+
		"worker.time_scale %s and every other setting at its default, downloading every video to a temporary "+
		"directory; a fresh Redis key namespace and API key per scenario; callback workers each serve their "+
		"receiver on a loopback port\n", sim.MaxInFlightDefault, sim.RequestsPerMinuteDefault, formatScale(c.TimeScale))
	fmt.Fprintln(bw)

	fmt.Fprintf(bw, "| %s |\n", strings.Join(tableHeader, " | "))
	fmt.Fprintf(bw, "|%s\n", strings.Repeat("---|", len(tableHeader)))
	for _, row := range r.Rows {
		fmt.Fprintf(bw, "| %s |\n", strings.Join(row.cells(), " | "))
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "Busy utilization: the share of the provider's %d slots generating in steady state, from the "+
		"moment the %dth task was created to the moment the last task was created (the sum of each task's "+
		"[created, complete] inside that window over %d × the window); n/a when fewer tasks were created. "+
		"Lag: from a task's completion to the client's first status read showing it ended, or first callback "+
		"delivery answered 200. Refill: from the client noticing a free slot (the k-th task it saw end) to the "+
		"create that fills it (the k-th create after the start-up ramp). Requests per job: creates and status reads, whatever their answer, per task "+
		"created. Redis figures are the growth of INFO's total_commands_processed and total_net_input_bytes + "+
		"total_net_output_bytes over the scenario, divided by the jobs; they include the benchmark's own few "+
		"reads (the batch counts every %v). Wall time runs from the enqueue (baseline: the first create) to "+
		"the last job's end, downloads included for seedbatch.\n",
		sim.MaxInFlightDefault, sim.MaxInFlightDefault, sim.MaxInFlightDefault, countsEvery)

	if e := r.Enqueue; e != nil {
		fmt.Fprintln(bw)
		if e.Err != nil {
			fmt.Fprintf(bw, "Enqueue of %d rows: error: %s\n", e.Rows, errorText(e.Err))
		} else {
			rss := "unknown"
			if e.MaxRSS >= 0 {
				rss = fmt.Sprintf("%.0f MiB", float64(e.MaxRSS)/(1<<20))
			}
			ratio := 0.0
			if e.AsynqRate() > 0 {
				ratio = e.SeedbatchRate() / e.AsynqRate()
			}
			fmt.Fprintf(bw, "Enqueue: `seedbatch enqueue` of a %d-row CSV file (%d-character prompts): "+
				"%.0f rows/s (%.2f s, process start included), max RSS %s; asynq's Client.Enqueue of %d tasks "+
				"(the same prompts, a task id each) from %d goroutines into the same Redis: %.0f tasks/s "+
				"(%.2f s); seedbatch / asynq = %.2f.\n",
				e.Rows, promptChars, e.SeedbatchRate(), e.Seedbatch.Seconds(), rss,
				e.Rows, enqueueGoroutines, e.AsynqRate(), e.Asynq.Seconds(), ratio)
		}
	}
	return bw.Flush()
}

// cells returns the row's table cells.
func (row Row) cells() []string {
	workers := "–"
	if row.Workers > 0 {
		workers = strconv.Itoa(row.Workers)
	}
	cells := []string{row.Scenario, workers, strconv.Itoa(row.Jobs)}
	if row.Err != nil {
		cells = append(cells, "error: "+errorText(row.Err))
		for len(cells) < len(tableHeader) {
			cells = append(cells, "–")
		}
		return cells
	}
	st := row.Stats
	busy := "n/a"
	if st.BusyWindow > 0 {
		busy = fmt.Sprintf("%.3f", st.BusyUtilization)
	}
	lag := fmt.Sprintf("%.1f / %.1f", st.DetectionLag.P50, st.DetectionLag.P99)
	if st.DetectionLag.NeverNoticed > 0 {
		lag += fmt.Sprintf(" (%d never)", st.DetectionLag.NeverNoticed)
	}
	perJob := func(v float64, format string) string {
		if v < 0 || row.Jobs == 0 {
			return "–"
		}
		return fmt.Sprintf(format, v/float64(row.Jobs))
	}
	refill := fmt.Sprintf("%.1f / %.1f", st.RefillLag.P50, st.RefillLag.P99)
	return append(cells, busy, fmt.Sprintf("%.2f", st.RequestsPerJob), lag, refill,
		strconv.Itoa(st.PeakInFlight), strconv.Itoa(st.RateLimited), strconv.Itoa(st.DuplicateCreates),
		perJob(float64(row.WorkerCPU)/float64(time.Millisecond), "%.2f"),
		perJob(float64(row.RedisCommands), "%.1f"), perJob(float64(row.RedisBytes), "%.0f"),
		fmt.Sprintf("%.1f s", row.Wall.Seconds()))
}

func scaledDuration(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) / scale).Round(time.Millisecond)
}

func formatScale(s float64) string { return strconv.FormatFloat(s, 'g', -1, 64) }
