package embedded

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestFreePortsStayOutOfTheKernelsWayAndEachOthers(t *testing.T) {
	lo, hi, ok := reservableRange()
	if !ok {
		t.Fatal("this machine's /proc names no ephemeral port range; the tests here run on Linux")
	}
	first, err := FreePorts("127.0.0.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	second, err := FreePorts("127.0.0.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range append(first, second...) {
		if p < lo || p >= hi {
			t.Errorf("port %d is outside %d-%d, where the kernel may hand it out", p, lo, hi-1)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		// A second open file description is what another process would hold:
		// the lock must refuse it while this process runs.
		if f, err := lockPort(filepath.Join(os.TempDir(), "tributary-ports"), p); !errors.Is(err, errPortLocked) {
			if f != nil {
				_ = f.Close()
			}
			t.Errorf("port %d: lock taken again (err %v)", p, err)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d cannot be bound by its owner: %v", p, err)
			continue
		}
		_ = l.Close()
	}
}
