// Package chart draws the benchmark's runs as one PNG: the rate of every
// scenario (log scale) across runs, the CPU time each process spends per
// flow (where the time goes), and the latency of each REST call at half
// the highest rate against its target.
package chart

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strings"

	"github.com/dhosauth/dhosauth/bench/internal/report"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// MaxRuns is how many of the latest runs the chart compares.
const MaxRuns = 4

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{30, 30, 30, 255}
	grey  = color.RGBA{150, 150, 150, 255}
	light = color.RGBA{228, 228, 228, 255}
	red   = color.RGBA{200, 40, 40, 255}
	// runColours tell runs apart, oldest lightest.
	runColours = []color.RGBA{{198, 219, 239, 255}, {133, 180, 222, 255}, {66, 133, 200, 255}, {20, 70, 150, 255}}
	// procColours tell processes apart (report.ProcessOrder).
	procColours = map[string]color.RGBA{
		"gateway": {230, 159, 0, 255}, "activation": {86, 180, 233, 255}, "device": {0, 158, 115, 255},
		"session": {240, 228, 66, 255}, "token": {0, 114, 178, 255}, "postgres": {213, 94, 0, 255}, "loadgen": {204, 121, 167, 255},
	}
)

type canvas struct {
	img        *image.RGBA
	face, bold font.Face
}

func newFace(ttf []byte, size float64) (font.Face, error) {
	f, err := opentype.Parse(ttf)
	if err != nil {
		return nil, err
	}
	return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
}

func (c *canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	draw.Draw(c.img, image.Rect(x0, y0, x1, y1), &image.Uniform{col}, image.Point{}, draw.Src)
}

// text draws s with its baseline at y; align is 'l', 'r' or 'c' about x.
func (c *canvas) text(x, y int, s string, col color.Color, align byte, bold bool) {
	face := c.face
	if bold {
		face = c.bold
	}
	d := &font.Drawer{Dst: c.img, Src: &image.Uniform{col}, Face: face}
	w := d.MeasureString(s).Ceil()
	switch align {
	case 'r':
		x -= w
	case 'c':
		x -= w / 2
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

const (
	width  = 1500
	left   = 500 // labels
	right  = 150
	rowH   = 18
	margin = 20
)

// Write draws the latest MaxRuns runs into path.
func Write(path string, runs []*report.Run) error {
	if len(runs) == 0 {
		return fmt.Errorf("no runs")
	}
	if len(runs) > MaxRuns {
		runs = runs[len(runs)-MaxRuns:]
	}
	face, err := newFace(goregular.TTF, 13)
	if err != nil {
		return err
	}
	bold, err := newFace(gobold.TTF, 14)
	if err != nil {
		return err
	}
	latest := runs[len(runs)-1]
	height := 140 + rateHeight(latest, len(runs)) + cpuHeight(runs) + latencyHeight(latest)
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, width, height)), face: face, bold: bold}
	c.rect(0, 0, width, height, white)
	c.text(margin, 28, "dhosauth benchmark: "+latest.Machine.CPUModel+fmt.Sprintf(", %d CPUs, PostgreSQL %s", latest.Machine.CPUs, latest.Machine.Postgres), black, 'l', true)
	var legend []string
	for i, r := range runs {
		legend = append(legend, fmt.Sprintf("run %s (%s, %s)", r.ID, r.Mode, r.Machine.Commit))
		_ = i
	}
	y := 48
	for i, l := range legend {
		col := runColours[len(runColours)-len(runs)+i]
		c.rect(margin, y-10, margin+14, y+2, col)
		c.text(margin+20, y, l, black, 'l', false)
		y += 17
	}
	y += 10
	y = c.rates(y, runs)
	y = c.cpu(y+20, runs)
	c.latency(y+20, latest)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func rateHeight(latest *report.Run, n int) int { return 40 + len(latest.Scenarios)*(n*rowH/2+14) + 30 }

// rates draws each scenario's rate on a log scale, one bar per run.
func (c *canvas) rates(y int, runs []*report.Run) int {
	latest := runs[len(runs)-1]
	c.text(margin, y+16, "Rate of each scenario (per second, log scale): flows, calls or hashes completed", black, 'l', true)
	y += 32
	x0, x1 := left, width-right
	lo, hi := 1.0, 100000.0
	xOf := func(v float64) int {
		if v < lo {
			v = lo
		}
		return x0 + int(float64(x1-x0)*math.Log10(v/lo)/math.Log10(hi/lo))
	}
	bar := rowH / 2
	top := y
	rows := len(latest.Scenarios)*(len(runs)*bar+14) + 4
	for v := lo; v <= hi; v *= 10 {
		x := xOf(v)
		c.rect(x, top, x+1, top+rows, light)
		c.text(x, top+rows+14, commas(v), grey, 'c', false)
	}
	for _, sc := range latest.Scenarios {
		c.text(x0-8, y+len(runs)*bar/2+5, shorten(sc.Title+" — "+sc.Load, 74), black, 'r', false)
		for i, r := range runs {
			col := runColours[len(runColours)-len(runs)+i]
			if s, ok := r.Find(sc.Key); ok && s.Flows.Rate > 0 {
				c.rect(x0, y, xOf(s.Flows.Rate), y+bar-1, col)
				if i == len(runs)-1 {
					c.text(xOf(s.Flows.Rate)+4, y+bar, fmt.Sprintf("%s /s", commas(s.Flows.Rate)), black, 'l', false)
				}
			}
			y += bar
		}
		y += 14
	}
	// The 1,000 patient flows per second target.
	x := xOf(1000)
	c.rect(x, top, x+2, top+rows, red)
	c.text(x+4, top-4, "target: 1,000 patient flows/s", red, 'l', false)
	return top + rows + 20
}

// restKeys are the closed-loop REST scenarios whose CPU is broken down.
var restKeys = []string{"a-patient-max", "b-device-max", "c-clinician-max"}

func cpuHeight(runs []*report.Run) int { return 70 + len(restKeys)*(len(runs)*(rowH+4)+12) }

// cpu draws, per REST scenario and run, the CPU milliseconds each process
// spent per flow, stacked.
func (c *canvas) cpu(y int, runs []*report.Run) int {
	c.text(margin, y+16, "Where the time goes: CPU milliseconds per flow, by process (highest-rate runs)", black, 'l', true)
	y += 30
	lx := left
	for _, p := range report.ProcessOrder {
		c.rect(lx, y-10, lx+14, y+2, procColours[p])
		c.text(lx+18, y, p, black, 'l', false)
		lx += 110
	}
	y += 12
	hi := 0.0
	for _, r := range runs {
		for _, k := range restKeys {
			if s, ok := r.Find(k); ok {
				hi = max(hi, total(s))
			}
		}
	}
	hi = niceCeil(hi)
	x0, x1 := left, width-right
	top := y
	rows := len(restKeys)*(len(runs)*(rowH+4)+12) + 4
	for i := 0; i <= 5; i++ {
		v := hi * float64(i) / 5
		x := x0 + int(float64(x1-x0)*v/hi)
		c.rect(x, top, x+1, top+rows, light)
		c.text(x, top+rows+14, fmt.Sprintf("%.1f ms", v), grey, 'c', false)
	}
	for _, k := range restKeys {
		for _, r := range runs {
			s, ok := r.Find(k)
			if !ok {
				y += rowH + 4
				continue
			}
			c.text(x0-8, y+rowH-5, shorten(strings.TrimSuffix(s.Title, ", highest rate"), 44)+" · "+r.ID, black, 'r', false)
			x := x0
			for _, p := range report.ProcessOrder {
				u, ok := s.Processes[p]
				if !ok || u.CPUPerFlowMs <= 0 {
					continue
				}
				w := int(float64(x1-x0) * u.CPUPerFlowMs / hi)
				c.rect(x, y, x+w, y+rowH, procColours[p])
				x += w
			}
			c.text(x+4, y+rowH-5, fmt.Sprintf("%.2f ms (%s /s)", total(s), commas(s.Flows.Rate)), black, 'l', false)
			y += rowH + 4
		}
		y += 12
	}
	return top + rows + 20
}

func total(s report.Scenario) float64 {
	t := 0.0
	for _, u := range s.Processes {
		t += u.CPUPerFlowMs
	}
	return t
}

var halfKeys = []string{"a-patient-half", "b-device-half", "c-clinician-half"}

func latencyHeight(r *report.Run) int {
	n := 0
	for _, k := range halfKeys {
		if s, ok := r.Find(k); ok {
			n += len(s.StepOrder)
		}
	}
	return 80 + n*(rowH+6) + 3*10
}

// latency draws p50 and p99 of each REST call at half the highest rate.
func (c *canvas) latency(y int, r *report.Run) {
	c.text(margin, y+16, "Latency of each REST call at half the highest rate (latest run): p50, p99; target p99 < 25 ms", black, 'l', true)
	y += 34
	x0, x1 := left, width-right
	hi := 25.0
	for _, k := range halfKeys {
		if s, ok := r.Find(k); ok {
			for _, st := range s.Steps {
				hi = max(hi, st.P99)
			}
		}
	}
	hi = niceCeil(hi * 1.1)
	top := y
	rows := latencyHeight(r) - 80
	xOf := func(v float64) int { return x0 + int(float64(x1-x0)*v/hi) }
	for i := 0; i <= 5; i++ {
		v := hi * float64(i) / 5
		c.rect(xOf(v), top, xOf(v)+1, top+rows, light)
		c.text(xOf(v), top+rows+14, fmt.Sprintf("%.0f ms", v), grey, 'c', false)
	}
	for _, k := range halfKeys {
		s, ok := r.Find(k)
		if !ok {
			continue
		}
		for _, step := range s.StepOrder {
			st := s.Steps[step]
			c.text(x0-8, y+rowH-4, shorten(strings.TrimSuffix(s.Title, ", half that rate"), 40)+" · "+step+" ("+s.Load+")", black, 'r', false)
			c.rect(x0, y, xOf(st.P99), y+rowH, runColours[1])
			c.rect(x0, y+4, xOf(st.P50), y+rowH-4, runColours[3])
			c.text(xOf(st.P99)+4, y+rowH-4, fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", st.P50, st.P99), black, 'l', false)
			y += rowH + 6
		}
		y += 10
	}
	c.rect(xOf(25), top, xOf(25)+2, top+rows, red)
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow10(int(math.Floor(math.Log10(v))))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func commas(v float64) string {
	if v < 10 {
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	}
	s := fmt.Sprint(int64(v + 0.5))
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
