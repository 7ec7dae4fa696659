package store

import (
	"testing"

	"outpost/relay/wire"
)

func TestAgentTexts(t *testing.T) {
	tests := []struct {
		name                 string
		a                    Agent
		cluster, via, system string
	}{
		{"direct", Agent{OS: wire.OSLinux, Arch: "amd64"},
			"(direct connection)", "direct (the management host)", "linux amd64"},
		{"through a proxy", Agent{ClusterID: 2, Cluster: "edge", ViaProxyID: 3, Via: "edge-2", OS: wire.OSLinux, OSName: "Ubuntu 24.04", Arch: "arm64"},
			"edge", "edge-2 (proxy server 3)", "linux (Ubuntu 24.04) arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.ClusterText(); got != tt.cluster {
				t.Errorf("ClusterText() = %q, want %q", got, tt.cluster)
			}
			if got := tt.a.ViaText(); got != tt.via {
				t.Errorf("ViaText() = %q, want %q", got, tt.via)
			}
			if got := tt.a.SystemText(); got != tt.system {
				t.Errorf("SystemText() = %q, want %q", got, tt.system)
			}
		})
	}
}
