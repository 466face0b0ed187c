package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the run: the stack or an extra role. Each start writes a
// log file of its own; kill sends SIGKILL to its whole process group and waits.
type proc struct {
	name   string
	bin    string
	args   []string
	logDir string
	// ready, if set, is a line of its output that says it is ready.
	ready string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
	// peakRSS is the largest resident set seen of any of its runs, in bytes.
	peakRSS int64
}

// start launches the process and, if it has a ready line, waits for it.
func (p *proc) start(ctx context.Context, timeout time.Duration) error {
	p.mu.Lock()
	p.starts++
	path := filepath.Join(p.logDir, fmt.Sprintf("%s-%d.log", p.name, p.starts))
	p.mu.Unlock()
	logFile, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	// A group of its own, so that a kill takes its children too; and gone with the run,
	// should the run itself be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	ready := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if p.ready != "" && strings.Contains(line, p.ready) {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(logFile, out)
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	if p.ready == "" {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-done:
		return fmt.Errorf("%s exited before it was ready (see %s)", p.name, path)
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s not ready after %s (see %s)", p.name, timeout, path)
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
}

// kill sends SIGKILL to the process group and waits until the process is gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// signal sends sig (SIGSTOP, SIGCONT) to the process group, if it runs.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// sampleRSS notes the process's peak resident set so far (the kernel's high-water mark,
// VmHWM), if it runs.
func (p *proc) sampleRSS() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				p.peakRSS = max(p.peakRSS, kb<<10)
			}
		}
	}
}

// peak is the largest resident set seen, in bytes.
func (p *proc) peak() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS
}

// stop asks the process to end (SIGTERM) and kills it if it has not within the timeout.
func (p *proc) stop(timeout time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT) // a stopped process acts on it only once it runs
	select {
	case <-done:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
	case <-time.After(timeout):
		p.kill()
	}
}
