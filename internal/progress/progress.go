// Package progress draws a progress bar with the current rate and the time left. On a
// terminal the bar redraws itself in place; anywhere else (a pipe, a log, compose, CI) it
// writes a whole line every few seconds instead, so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Window is how far back the shown rate looks: the current rate, not the average since
// the start, which keeps falling while a run waits at its end.
const Window = 5 * time.Second

// LineEvery is how often a bar that cannot redraw in place writes a line.
const LineEvery = 5 * time.Second

// Bar is one progress bar.
type Bar struct {
	out     io.Writer
	label   string
	total   int
	width   int
	inPlace bool
	now     func() time.Time

	mu       sync.Mutex
	start    time.Time
	last     int
	samples  []sample
	lastLine time.Time
}

type sample struct {
	at   time.Time
	done int
}

// New starts a bar for total units, redrawn in place when out is a terminal.
func New(out io.Writer, label string, total int) *Bar {
	f, ok := out.(*os.File)
	return newBar(out, label, total, ok && term.IsTerminal(int(f.Fd())), time.Now)
}

func newBar(out io.Writer, label string, total int, inPlace bool, now func() time.Time) *Bar {
	b := &Bar{out: out, label: label, total: total, width: 30, inPlace: inPlace, now: now, start: now()}
	b.samples = []sample{{b.start, 0}}
	return b
}

// Set records done units and draws: in place at once, or as a line when LineEvery passed
// since the last one.
func (b *Bar) Set(done int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(done)
	now := b.now()
	if b.inPlace {
		fmt.Fprint(b.out, "\r"+b.line(now))
		return
	}
	if now.Sub(b.lastLine) >= LineEvery {
		b.lastLine = now
		fmt.Fprintln(b.out, strings.TrimRight(b.line(now), " "))
	}
}

// record keeps done (never going back) and the samples of the last Window.
func (b *Bar) record(done int) {
	b.last = max(b.last, done)
	now := b.now()
	b.samples = append(b.samples, sample{now, b.last})
	// Keep one sample at or before the window's start, so the rate spans it whole.
	cut := 0
	for cut+1 < len(b.samples) && now.Sub(b.samples[cut+1].at) >= Window {
		cut++
	}
	b.samples = b.samples[cut:]
}

// Rate is units per second over the last Window (over the whole run while it is shorter).
func (b *Bar) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate()
}

func (b *Bar) rate() float64 {
	first, last := b.samples[0], b.samples[len(b.samples)-1]
	if d := last.at.Sub(first.at); d > 0 {
		return float64(last.done-first.done) / d.Seconds()
	}
	return 0
}

// line renders the bar as of now.
func (b *Bar) line(now time.Time) string {
	done := b.last
	frac := 0.0
	if b.total > 0 {
		frac = min(float64(done)/float64(b.total), 1)
	}
	fill := int(frac * float64(b.width))
	rate := b.rate()
	eta := "--"
	if done >= b.total {
		eta = "0s"
	} else if rate > 0 {
		eta = (time.Duration(float64(b.total-done)/rate*float64(time.Second)) + time.Second/2).Truncate(time.Second).String()
	}
	elapsed := now.Sub(b.start).Truncate(time.Second)
	return fmt.Sprintf("%-16s [%s%s] %3.0f%% %d/%d  %.0f/s  %s elapsed  ETA %s   ",
		b.label, strings.Repeat("█", fill), strings.Repeat("░", b.width-fill), 100*frac, done, b.total, rate, elapsed, eta)
}

// Done draws the final state and ends the line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(b.last)
	if b.inPlace {
		fmt.Fprintln(b.out, "\r"+b.line(b.now()))
		return
	}
	fmt.Fprintln(b.out, strings.TrimRight(b.line(b.now()), " "))
}
