package progress

import (
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	b := New(nil, "sending", 200)
	cases := []struct {
		done    int
		elapsed time.Duration
		want    []string
	}{
		{0, 0, []string{" 0%", "0/200", "ETA --"}},
		{50, time.Second, []string{"25%", "50/200", "50/s", "ETA 3s"}},
		{200, 2 * time.Second, []string{"100%", "200/200", "100/s", "ETA 0s"}},
		{250, 2 * time.Second, []string{"100%", "250/200"}},
	}
	for _, c := range cases {
		line := b.Line(c.done, c.elapsed)
		for _, w := range c.want {
			if !strings.Contains(line, w) {
				t.Errorf("Line(%d, %s) = %q, missing %q", c.done, c.elapsed, line, w)
			}
		}
		if got := strings.Count(line, "█") + strings.Count(line, "░"); got != 30 {
			t.Errorf("Line(%d) bar has %d cells, want 30", c.done, got)
		}
	}
}
