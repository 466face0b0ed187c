package embedded

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Ports handed out by FreePorts come from below the kernel's ephemeral range,
// so neither an outgoing connection's local port nor a listener on port 0 (in
// this process or any other) can take one between the moment it is picked and
// the moment its server binds it. Processes that use FreePorts at the same
// time (go test runs packages in parallel) keep out of each other's way
// through a lock file per port, held until the process exits.

// reservedSpan is how many ports below the ephemeral range FreePorts draws from.
const reservedSpan = 12000

var reservations struct {
	sync.Mutex
	held map[int]*os.File // port -> its locked file, open for the process's life
}

// FreePorts returns n distinct ports that nothing listens on at ip and that
// no other caller of FreePorts, in this process or another, will return while
// this process runs.
func FreePorts(ip string, n int) ([]int, error) {
	lo, hi, ok := reservableRange()
	if !ok {
		return kernelPorts(ip, n)
	}
	dir := filepath.Join(os.TempDir(), "tributary-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("port lock directory: %w", err)
	}
	reservations.Lock()
	defer reservations.Unlock()
	if reservations.held == nil {
		reservations.held = map[int]*os.File{}
	}
	span := hi - lo
	start := rand.IntN(span)
	var ports []int
	for i := 0; i < span && len(ports) < n; i++ {
		port := lo + (start+i)%span
		if _, mine := reservations.held[port]; mine {
			continue
		}
		f, err := lockPort(dir, port)
		if err != nil {
			continue // another process holds it, or the lock cannot be taken
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			_ = f.Close() // something outside Tributary listens there
			continue
		}
		_ = l.Close()
		reservations.held[port] = f
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found %d of %d free ports in %d-%d on %s", len(ports), n, lo, hi-1, ip)
	}
	return ports, nil
}

// reservableRange is the span of ports just below the ephemeral range.
func reservableRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, 0, false
	}
	hi, err = strconv.Atoi(fields[0])
	if err != nil || hi-reservedSpan < 1024 {
		return 0, 0, false
	}
	return hi - reservedSpan, hi, true
}

// kernelPorts lets the kernel pick, where no range outside its own is known.
func kernelPorts(ip string, n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var errPortLocked = errors.New("port locked by another process")
