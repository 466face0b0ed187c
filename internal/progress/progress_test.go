package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// clock is a clock the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)} }
func lines(b *bytes.Buffer) []string { return strings.Split(strings.TrimRight(b.String(), "\n"), "\n") }
func has(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%q lacks %q", s, w)
		}
	}
}

func TestInPlaceRedraws(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := newBar(&out, "sending", 200, true, c.now)
	c.add(time.Second)
	b.Set(50)
	has(t, out.String(), "\r", " 25%", "50/200", "50/s", "ETA 3s")
	if n := strings.Count(out.String(), "█") + strings.Count(out.String(), "░"); n != 30 {
		t.Errorf("bar has %d cells, want 30", n)
	}
	c.add(3 * time.Second)
	b.Set(200)
	b.Done()
	has(t, out.String(), "100%", "200/200", "ETA 0s")
	if !strings.HasSuffix(out.String(), "\n") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("in place, only Done ends the line: %q", out.String())
	}
}

// Piped, the bar writes a whole line every LineEvery, not one per Set.
func TestPipedWritesALineEveryFewSeconds(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := newBar(&out, "acks", 1000, false, c.now)
	for i := 1; i <= 100; i++ { // 10 s of updates every 100 ms
		c.add(100 * time.Millisecond)
		b.Set(10 * i)
	}
	b.Done()
	got := lines(&out)
	if strings.Contains(out.String(), "\r") {
		t.Error("a piped bar redraws with carriage returns")
	}
	// The first Set (LineEvery after no line), one LineEvery later, and Done.
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(got), out.String())
	}
	has(t, got[2], "100%", "1000/1000", "100/s", "10s elapsed")
}

// The rate is the current one: a run that stalls shows 0/s soon, not an average that
// falls slowly while it waits.
func TestRateIsCurrent(t *testing.T) {
	c := newClock()
	b := newBar(&bytes.Buffer{}, "acks", 1000, false, c.now)
	for i := 1; i <= 50; i++ { // 100/s for 5 s
		c.add(100 * time.Millisecond)
		b.Set(10 * i)
	}
	if r := b.Rate(); r < 99 || r > 101 {
		t.Fatalf("rate %v while sending 100/s", r)
	}
	for range 60 { // then nothing for 6 s
		c.add(100 * time.Millisecond)
		b.Set(500)
	}
	if r := b.Rate(); r != 0 {
		t.Errorf("rate %v after 6 s without progress; the average since the start is 45/s", r)
	}
	for i := 1; i <= 20; i++ { // then 20/s
		c.add(100 * time.Millisecond)
		b.Set(500 + 2*i)
	}
	if r := b.Rate(); r < 7 || r > 21 {
		t.Errorf("rate %v two seconds into 20/s", r)
	}
}

// A file that is not a terminal gets lines.
func TestNewDetectsNoTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b := New(f, "x", 1); b.inPlace {
		t.Error("a plain file is drawn in place")
	}
	if b := New(&bytes.Buffer{}, "x", 1); b.inPlace {
		t.Error("a buffer is drawn in place")
	}
}
