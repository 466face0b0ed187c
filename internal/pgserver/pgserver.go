// Package pgserver runs a PostgreSQL server of its own for a test or a bench: Debian's
// server binaries (installed by `make deps`), a data directory in a fresh temporary folder,
// listening on loopback only, stopped and removed by its handle, and killed with the
// process that started it. Run as root, the server runs as the postgres user Debian's
// package created, since PostgreSQL refuses to run as root.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tributary-dev/tributary/internal/embedded"
)

// Database is the database each server is given.
const Database = "tributary"

// binDir is the newest installed server's bin directory.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(a) - version(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("no PostgreSQL server under /usr/lib/postgresql: `make deps` installs Debian's postgresql")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Options choose between speed and durability.
type Options struct {
	// Durable keeps fsync and full-page writes, and loses at most the last moment's commits
	// on an OS crash (synchronous_commit=off), as SQLite's WAL with synchronous=NORMAL
	// does: the setting benches compare. Off, as for tests, nothing is flushed.
	Durable bool
}

// Start runs a server and returns the URL of a database of its own, Database, and the
// function that stops the server and removes its data.
func Start(opts Options) (dbURL string, stop func(), err error) {
	bin, err := binDir()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "tributary-pg-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	cred, err := serverUser(dir)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "--no-sync", "--auth=trust", "--username="+Database, "--encoding=UTF8", "-D", data)
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	ports, err := embedded.FreePorts("127.0.0.1", 1)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	port := ports[0]
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		cleanup()
		return "", nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir,
		"-c", "synchronous_commit=off", "-c", "max_connections=200"}
	if !opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	srv := exec.Command(filepath.Join(bin, "postgres"), args...)
	srv.Stdout, srv.Stderr = logFile, logFile
	// The server ends with the test binary, even one that is killed.
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		logFile.Close()
		cleanup()
		return "", nil, fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); close(exited) }()
	stop = func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
		logFile.Close()
		cleanup()
	}
	base := fmt.Sprintf("postgres://%s@127.0.0.1:%d/", Database, port)
	if err := create(base+"postgres?sslmode=disable", exited); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return "", nil, fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return base + Database + "?sslmode=disable", stop, nil
}

// create waits for the server to take connections, then creates the test's database.
func create(adminURL string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		g, err := gorm.Open(postgres.Open(adminURL), &gorm.Config{Logger: logger.Discard})
		if err == nil {
			err = g.Exec("CREATE DATABASE " + Database).Error
			if s, derr := g.DB(); derr == nil {
				_ = s.Close()
			}
			if err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not take connections: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serverUser is who the server runs as: the test's own user, or the postgres user when
// the test runs as root, who is then given dir.
func serverUser(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the server needs the postgres user (Debian's postgresql package makes it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// WithDatabase is serverURL, a URL Start returned, naming another database on the same
// server; Temporal on PostgreSQL creates it.
func WithDatabase(serverURL, name string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		panic(fmt.Sprintf("pgserver: a URL of its own does not parse: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}
