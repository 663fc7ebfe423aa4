package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// mlflowServer is a running `mlflow models serve` (its process group: the
// CLI, uvicorn and uvicorn's workers).
type mlflowServer struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	log  *os.File
}

// startMLflow runs `mlflow models serve -m dir --env-manager local` on a
// free loopback port with the venv's bin first on PATH (the CLI execs
// uvicorn from there) and waits until /ping answers 200.
func startMLflow(ctx context.Context, mlflowBin, dir, logPath string, wait time.Duration) (*mlflowServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(mlflowBin, "models", "serve", "-m", dir, "--env-manager", "local", "-h", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(mlflowBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // one group to stop: CLI, uvicorn, workers
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", mlflowBin, err)
	}
	s := &mlflowServer{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan error, 1), log: logf}
	go func() { s.done <- cmd.Wait() }()
	slog.Info("mlflow models serve: started", "pid", cmd.Process.Pid, "url", s.url, "log", logPath)

	deadline := time.Now().Add(wait)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(s.url + "/ping")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			s.stop()
			return nil, fmt.Errorf("mlflow models serve exited before /ping answered (%v); log: %s", err, tail(logPath))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("mlflow models serve: /ping did not answer 200 within %s; log: %s", wait, tail(logPath))
		}
	}
}

// stop sends SIGTERM to the server's process group and waits up to 15 s
// for every process of the group to exit (the CLI exits before uvicorn's
// workers do), then SIGKILLs what is left.
func (s *mlflowServer) stop() {
	defer s.log.Close()
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if syscall.Kill(-pgid, syscall.SIGKILL) == nil {
		slog.Warn("mlflow models serve: killed processes still running 15 s after SIGTERM", "pgid", pgid)
	}
	<-s.done
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// post sends the body file to url; see postBytes.
func post(ctx context.Context, url, bodyFile string) ([]byte, error) {
	b, err := os.ReadFile(bodyFile)
	if err != nil {
		return nil, err
	}
	return postBytes(ctx, http.DefaultClient, url, b)
}

// postBytes POSTs a JSON body and returns the response body; a non-2xx
// status is an error carrying the start of the response.
func postBytes(ctx context.Context, client *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST %s: %s: %s", url, resp.Status, trim(out, 500))
	}
	return out, nil
}

func trim(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

var errNoScores = errors.New("no predictions.scores in the response")
