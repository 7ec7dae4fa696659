//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// perfNginx is nginx run as a child process with its own configuration
// and temp directories (never the system service): a plain reverse proxy
// in front of `outpost center`, tuned only as a user would (keep-alive to
// the upstream, bodies of a batch kept in memory, no access log).
type perfNginx struct {
	p   *proc
	url string // http://HOST:PORT
}

const nginxConf = `worker_processes auto;
%s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	client_max_body_size 32m;
	client_body_buffer_size 16m;
	upstream center {
		server %[3]s;
		keepalive 32;
	}
	server {
		listen %[4]s;
		location / {
			proxy_pass http://center;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`

func startNginx(t *testing.T, bin, upstream string) *perfNginx {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddrOn(t, "127.0.0.1")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers would run as nobody, who cannot enter the temp dir
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, user, dir, upstream, addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	n := &perfNginx{p: startProc(t, cmd, "nginx -c "+conf), url: "http://" + addr}
	waitCond(t, n.p, 10*time.Second, "nginx listening on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	// Before startProc's SIGKILL (cleanups run last first): a killed master
	// leaves its workers serving, so stop it with SIGTERM and kill any
	// worker of it still there.
	t.Cleanup(func() {
		workers := childPIDs(n.p.cmd.Process.Pid)
		n.p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.p.done:
		case <-time.After(5 * time.Second):
		}
		for _, w := range workers {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", w)); strings.TrimSpace(string(b)) == "nginx" {
				syscall.Kill(w, syscall.SIGKILL)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil && strings.Contains(string(b), "[error]") {
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	return n
}

// pids are the master and its workers.
func (n *perfNginx) pids() []int {
	m := n.p.cmd.Process.Pid
	return append([]int{m}, childPIDs(m)...)
}
