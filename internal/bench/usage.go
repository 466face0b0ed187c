package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// Usage is what the bench process (stack, roles and load alike) used during a scenario.
type Usage struct {
	// PeakRSS is the highest resident set size in bytes, from the scenario's start.
	PeakRSS int64
	// Written is the bytes the process caused to be written to storage.
	Written int64
}

// usageMark starts measuring a scenario: it resets the process's peak RSS (Linux keeps it
// in VmHWM and resets it on a write of 5 to clear_refs) and notes the bytes written so far.
type usageMark struct{ written int64 }

func markUsage() usageMark {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return usageMark{written: procField("/proc/self/io", "write_bytes:")}
}

// since is the usage from the mark until now.
func (m usageMark) since() Usage {
	return Usage{PeakRSS: procField("/proc/self/status", "VmHWM:") * 1024, Written: procField("/proc/self/io", "write_bytes:") - m.written}
}

// procField reads the number after a label in a /proc file; zero where there is none.
func procField(file, label string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		line := s.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte(label)); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return n
			}
		}
	}
	return 0
}
