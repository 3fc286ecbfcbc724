package dashboard

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/seedbatch/seedbatch/batch"
)

// Chart geometry, in the SVG's own units: it scales to the page's width.
const (
	chartWidth  = 960
	chartHeight = 200
	chartLeft   = 44 // room for the left axis's labels
	chartRight  = 56 // room for the right axis's labels
	chartTop    = 14
	chartBottom = 22 // room for the times
	// chartMaxBars is the most bars a chart draws; longer spans put
	// several minutes in one bar.
	chartMaxBars = 240
	// ListChartSpan is how far back the list page's chart goes.
	ListChartSpan = 3 * time.Hour
	// chartMinSpan is the least time a batch's chart spans.
	chartMinSpan = 30 * time.Minute
)

// chart is a server-drawn SVG of a series: bars of rows finished per
// minute (left axis) and a line of the rows in flight (right axis), with
// the in-flight limit dashed.
type chart struct {
	ID, Title     string
	Width, Height int
	// The plot's edges.
	Left, Right, Top, Bottom float64
	Bars                     []chartBar
	// Line is the polyline of the rows in flight.
	Line string
	// Limit is the in-flight limit, drawn at LimitY, labelled up to LimitX.
	Limit          int
	LimitY, LimitX float64
	// FinishedMax and InFlightMax top the left and the right axis.
	FinishedMax, InFlightMax int
	// AxisRightX and AxisTopY place the right axis's labels.
	AxisRightX, AxisTopY float64
	Times                []chartLabel
	// Minutes counts the minutes drawn, PerBar those one bar stands for.
	Minutes, PerBar int
	// TotalFinished and PeakInFlight sum up the minutes drawn.
	TotalFinished, PeakInFlight int
	Start, End                  time.Time
	// Empty is set when no row has moved.
	Empty bool
}

type chartBar struct {
	X, Y, W, H float64
	Title      string
}

type chartLabel struct {
	X    float64
	Text string
}

// newChart draws s (one value a minute, as batch.Combine returns) with the
// in-flight limit.
func newChart(id, title string, s batch.Series, limit int) *chart {
	c := &chart{ID: id, Title: title, Width: chartWidth, Height: chartHeight, Limit: limit,
		Left: chartLeft, Right: chartWidth - chartRight, Top: chartTop, Bottom: chartHeight - chartBottom}
	c.AxisRightX, c.AxisTopY, c.LimitX = c.Right+4, c.Top+4, c.Right-4
	if len(s) == 0 {
		c.Empty = true
		return c
	}
	c.Minutes, c.Start, c.End = len(s), s[0].Start, s[len(s)-1].Start.Add(time.Minute)
	c.PerBar = (len(s) + chartMaxBars - 1) / chartMaxBars
	type bin struct {
		start    time.Time
		finished int
		peak     int
	}
	var bins []bin
	for i := 0; i < len(s); i += c.PerBar {
		b := bin{start: s[i].Start}
		for _, m := range s[i:min(i+c.PerBar, len(s))] {
			b.finished += m.Finished
			b.peak = max(b.peak, m.PeakInFlight)
			c.TotalFinished += m.Finished
		}
		c.PeakInFlight = max(c.PeakInFlight, b.peak)
		bins = append(bins, b)
	}
	perMinute := func(b bin) float64 { return float64(b.finished) / float64(c.PerBar) }
	top := 0.0
	for _, b := range bins {
		top = math.Max(top, perMinute(b))
	}
	c.FinishedMax = niceCeil(top)
	c.InFlightMax = niceCeil(float64(max(c.PeakInFlight, limit)))
	w := (c.Right - c.Left) / float64(len(bins))
	h := c.Bottom - c.Top
	var pts []string
	for i, b := range bins {
		x := c.Left + float64(i)*w
		bh := perMinute(b) / float64(c.FinishedMax) * h
		if b.finished > 0 {
			c.Bars = append(c.Bars, chartBar{X: round1(x + w*0.1), Y: round1(c.Bottom - bh), W: round1(math.Max(w*0.8, 0.5)),
				H: round1(bh), Title: fmt.Sprintf("%s: %s rows finished a minute, at most %d in flight",
					b.start.UTC().Format("15:04"), strconv.FormatFloat(perMinute(b), 'f', -1, 64), b.peak)})
		}
		y := c.Bottom - float64(b.peak)/float64(c.InFlightMax)*h
		pts = append(pts, fmt.Sprintf("%g,%g", round1(x), round1(y)), fmt.Sprintf("%g,%g", round1(x+w), round1(y)))
	}
	c.Line = strings.Join(pts, " ")
	if limit > 0 {
		c.LimitY = round1(c.Bottom - float64(limit)/float64(c.InFlightMax)*h)
	}
	for _, f := range []float64{0, 0.5, 1} {
		t := c.Start.Add(time.Duration(f * float64(c.End.Sub(c.Start)))).UTC()
		c.Times = append(c.Times, chartLabel{X: round1(c.Left + f*(c.Right-c.Left)), Text: t.Format("15:04")})
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) int {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return int(m * p)
		}
	}
	return int(10 * p)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
