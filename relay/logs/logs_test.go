package logs_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"outpost/relay/logs"
)

func TestText(t *testing.T) {
	for _, tt := range []struct {
		name string
		log  func(l *slog.Logger)
		want string // after "HH:MM:SS "
	}{
		{"message only", func(l *slog.Logger) { l.Info("relay listening on 127.0.0.1:1") }, "relay listening on 127.0.0.1:1"},
		{"attributes", func(l *slog.Logger) { l.Info("check-in held", "agent", "a-1", "cluster", "dc1") }, "check-in held agent=a-1 cluster=dc1"},
		{"quoted values", func(l *slog.Logger) { l.Info("m", "reason", "no space left", "empty", "", "eq", "a=b", "q", `say "x"`) },
			`m reason="no space left" empty="" eq="a=b" q="say \"x\""`},
		{"error", func(l *slog.Logger) { l.Warn("spool: rotate", "err", errors.New("disk full")) }, `WARN spool: rotate err="disk full"`},
		{"level error", func(l *slog.Logger) { l.Error("boom") }, "ERROR boom"},
		{"debug hidden", func(l *slog.Logger) { l.Debug("noise") }, ""},
		{"numbers and durations", func(l *slog.Logger) { l.Info("m", "n", 3, "wait", 1500*time.Millisecond, "ok", true) }, "m n=3 wait=1.5s ok=true"},
		{"percent stays", func(l *slog.Logger) { l.Info("100%", "p", "50%") }, "100% p=50%"},
		{"With", func(l *slog.Logger) { l.With("relay", "r-1").Info("joined", "cluster", "dc1") }, "joined relay=r-1 cluster=dc1"},
		{"WithGroup", func(l *slog.Logger) { l.WithGroup("spool").With("seg", 3).Info("torn tail", "off", 8) }, "torn tail spool.seg=3 spool.off=8"},
		{"group attr", func(l *slog.Logger) { l.Info("m", slog.Group("load", "agents", 2, "mbit", 1.5)) }, "m load.agents=2 load.mbit=1.5"},
		{"inline group", func(l *slog.Logger) { l.Info("m", slog.Group("", "a", 1)) }, "m a=1"},
		{"string list", func(l *slog.Logger) { l.Info("m", "urls", []string{"https://a:1", "http://b:2"}) }, `m urls=https://a:1,http://b:2`},
		{"string list with a space", func(l *slog.Logger) { l.Info("m", "hosts", []string{"a b", "c"}) }, `m hosts="a b,c"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			l, err := logs.New(&b, "text")
			if err != nil {
				t.Fatal(err)
			}
			tt.log(l)
			got := b.String()
			if tt.want == "" {
				if got != "" {
					t.Errorf("got %q, want nothing", got)
				}
				return
			}
			if !regexp.MustCompile(`^\d\d:\d\d:\d\d ` + regexp.QuoteMeta(tt.want) + "\n$").MatchString(got) {
				t.Errorf("got %q, want HH:MM:SS %q and a newline", got, tt.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	var b strings.Builder
	l, err := logs.New(&b, "json")
	if err != nil {
		t.Fatal(err)
	}
	l.With("relay", "r-1").WithGroup("load").Warn("heartbeat failed", "err", errors.New("refused"), "agents", 2)
	var got map[string]any
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatalf("got %q: %v", b.String(), err)
	}
	want := map[string]any{"level": "WARN", "msg": "heartbeat failed", "relay": "r-1",
		"load": map[string]any{"err": "refused", "agents": float64(2)}}
	for k, v := range want {
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(t, v) {
			t.Errorf("%s: got %s, want %s", k, g, mustJSON(t, v))
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, got["time"].(string)); err != nil {
		t.Errorf("time: got %v: %v", got["time"], err)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		format string
		ok     bool
	}{{"", true}, {"text", true}, {"json", true}, {"JSON", false}, {"logfmt", false}} {
		t.Run(tt.format, func(t *testing.T) {
			_, err := logs.New(&strings.Builder{}, tt.format)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok %v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "want text or json") {
				t.Errorf("got %q, want it to name text and json", err)
			}
		})
	}
}

func TestTimeLayout(t *testing.T) {
	var b strings.Builder
	l, _ := logs.Options{TimeLayout: "2006-01-02 15:04:05"}.New(&b)
	l.Info("started")
	if got := b.String(); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d started\n$`).MatchString(got) {
		t.Errorf("got %q, want a dated line", got)
	}
}

func TestOrDiscard(t *testing.T) {
	logs.OrDiscard(nil).Info("nothing") // must not panic
	l := logs.Discard()
	if logs.OrDiscard(l) != l {
		t.Error("OrDiscard replaced a logger")
	}
}

type closeBuf struct {
	strings.Builder
	closed bool
}

func (c *closeBuf) Close() error { c.closed = true; return nil }

func TestAlso(t *testing.T) {
	var out strings.Builder
	l, _ := logs.New(&out, "json")
	var sw logs.Switch
	l = logs.Also(l, &sw, logs.Options{})
	l.Info("before")
	f := &closeBuf{}
	sw.Set(f)
	l.Info("during", "version", "1.2.0")
	sw.Set(nil)
	l.Info("after")
	if !f.closed {
		t.Error("Set(nil) did not close the trial log")
	}
	if got := f.String(); !regexp.MustCompile(`^\d\d:\d\d:\d\d during version=1.2.0\n$`).MatchString(got) {
		t.Errorf("trial log: got %q, want the one text line written while set", got)
	}
	if got := strings.Count(out.String(), `"msg"`); got != 3 {
		t.Errorf("main log: got %d JSON lines, want 3:\n%s", got, out.String())
	}
}
