//go:build !unix

package embedded

import "os"

// lockPort cannot lock across processes here; FreePorts only runs this path
// where /proc names the ephemeral range, which such systems do not have.
func lockPort(dir string, port int) (*os.File, error) {
	return nil, errPortLocked
}
