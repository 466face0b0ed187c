package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Usage is what the bench process (stack, roles and load alike) used during a scenario.
type Usage struct {
	// PeakRSS is the highest resident set size in bytes, from the scenario's start.
	PeakRSS int64
	// Written is the bytes the process caused to be written to storage.
	Written int64
	// CPU is the processor time the process spent, user and system. On a shared machine
	// whose speed varies from run to run (a VM whose neighbours take turns), the work a
	// scenario costs compares between runs where its rate does not.
	CPU time.Duration
}

// CPUPer is the processor time per record or event of a scenario of n, zero for none.
func (u Usage) CPUPer(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return u.CPU / time.Duration(n)
}

// usageMark starts measuring a scenario: it resets the process's peak RSS (Linux keeps it
// in VmHWM and resets it on a write of 5 to clear_refs) and notes the bytes written so far.
type usageMark struct {
	written int64
	cpu     time.Duration
}

func markUsage() usageMark {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return usageMark{written: procField("/proc/self/io", "write_bytes:"), cpu: processCPU()}
}

// since is the usage from the mark until now.
func (m usageMark) since() Usage {
	return Usage{PeakRSS: procField("/proc/self/status", "VmHWM:") * 1024, Written: procField("/proc/self/io", "write_bytes:") - m.written,
		CPU: processCPU() - m.cpu}
}

// processCPU is the user and system time of the whole process so far (zero if unknown).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
