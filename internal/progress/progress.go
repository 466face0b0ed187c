// Package progress draws a one-line progress bar with rate and time left on a terminal.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Bar redraws itself in place with a carriage return.
type Bar struct {
	out   io.Writer
	label string
	total int
	width int
	start time.Time
	mu    sync.Mutex
	last  int
}

// New starts a bar for total units.
func New(out io.Writer, label string, total int) *Bar {
	return &Bar{out: out, label: label, total: total, width: 30, start: time.Now()}
}

// Set redraws the bar at done units, with the average rate since the start and the time
// left at that rate.
func (b *Bar) Set(done int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = max(b.last, done)
	done = b.last
	fmt.Fprint(b.out, "\r"+b.Line(done, time.Since(b.start)))
}

// Line renders the bar at done units after elapsed time.
func (b *Bar) Line(done int, elapsed time.Duration) string {
	frac := 0.0
	if b.total > 0 {
		frac = min(float64(done)/float64(b.total), 1)
	}
	fill := int(frac * float64(b.width))
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	eta := "--"
	if rate > 0 && done < b.total {
		eta = (time.Duration(float64(b.total-done)/rate*float64(time.Second)) + time.Second/2).Truncate(time.Second).String()
	} else if done >= b.total {
		eta = "0s"
	}
	return fmt.Sprintf("%-16s [%s%s] %3.0f%% %d/%d  %.0f/s  ETA %s   ",
		b.label, strings.Repeat("█", fill), strings.Repeat("░", b.width-fill), 100*frac, done, b.total, rate, eta)
}

// Done draws the final state and ends the line.
func (b *Bar) Done() {
	b.Set(0)
	fmt.Fprintln(b.out)
}
