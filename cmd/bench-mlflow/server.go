package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a throwaway MLflow tracking server in its own process group, with
// its own sqlite database and artifact directory.
type server struct {
	URI  string
	dir  string
	keep bool
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *os.File
}

// startServer runs `mlflow server` on a free loopback port and waits for /health.
func startServer(ctx context.Context, bin string, workers int, keep bool) (*server, error) {
	dir, err := os.MkdirTemp("", "bench-mlflow-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	p := strconv.Itoa(port)
	cmd := exec.Command(bin, "server",
		"--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"),
		"--artifacts-destination", filepath.Join(dir, "artifacts"),
		"--serve-artifacts",
		"--host", "127.0.0.1", "--port", p,
		"--workers", strconv.Itoa(workers),
		"--allowed-hosts", "localhost:"+p+",127.0.0.1:"+p,
	)
	// The job runner (huey consumers) would compete for the 2 cores and is
	// not needed for tracking.
	cmd.Env = append(withoutMLflowEnv(os.Environ()), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: stopping it also stops uvicorn's worker processes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &server{URI: "http://127.0.0.1:" + p, dir: dir, keep: keep, cmd: cmd, done: make(chan struct{}), log: logf}
	go func() { _ = cmd.Wait(); close(s.done) }()

	t0 := time.Now()
	deadline := time.After(180 * time.Second)
	for {
		if healthy(ctx, s.URI) {
			slog.Info("mlflow server up", "uri", s.URI, "workers", workers, "pgid", cmd.Process.Pid,
				"dir", dir, "startup", time.Since(t0).Round(time.Millisecond))
			return s, nil
		}
		select {
		case <-s.done:
			err := fmt.Errorf("mlflow server exited during startup:\n%s", s.logTail())
			s.Stop()
			return nil, err
		case <-deadline:
			err := fmt.Errorf("mlflow server not healthy after 180s:\n%s", s.logTail())
			s.Stop()
			return nil, err
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop terminates the server's process group (TERM, then KILL after 15s) and
// removes its state unless it is to be kept.
func (s *server) Stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		slog.Warn("mlflow server ignored SIGTERM, killing", "pgid", pgid)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	// Workers may outlive the parent for a moment; make sure none is left.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.log.Close()
	if s.keep {
		slog.Info("kept server state", "dir", s.dir)
		return
	}
	_ = os.RemoveAll(s.dir)
}

// CPUSeconds is the user+sys CPU time consumed so far by the live processes
// of the server's process group (the parent and its uvicorn workers), read
// from /proc. It is the server side of each case's cost.
func (s *server) CPUSeconds() float64 {
	pgid := s.cmd.Process.Pid
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	tick := 100.0 // USER_HZ on Linux
	var total float64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the ")" that ends the command name: state(3) ppid(4)
		// pgrp(5) ... utime(14) stime(15).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / tick
	}
	return total
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func healthy(ctx context.Context, uri string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	ta, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("finding a free port: unexpected address %v", l.Addr())
	}
	return ta.Port, nil
}

// withoutMLflowEnv drops MLFLOW_* variables so nothing inherited (a tracking
// URI, run id, experiment) can point the children elsewhere.
func withoutMLflowEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MLFLOW_") {
			out = append(out, kv)
		}
	}
	return out
}
