package ops_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/store"
	"outpost/store/ops"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeBinder answers Bind from a script of errors (nil = bound).
type fakeBinder struct {
	errs  []error
	calls [][]string
}

func (b *fakeBinder) Bind(_ context.Context, _ int64, hosts []string) (store.BindResult, error) {
	b.calls = append(b.calls, hosts)
	if len(b.errs) > 0 {
		err := b.errs[0]
		b.errs = b.errs[1:]
		if err != nil {
			return store.BindResult{}, err
		}
	}
	return store.BindResult{Bound: hosts}, nil
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "h" + string(rune('a'+i%26))
	}
	return out
}

func TestBindBatches(t *testing.T) {
	for _, tt := range []struct{ n, want, last int }{{0, 0, 0}, {1, 1, 1}, {500, 1, 500}, {501, 2, 1}, {1200, 3, 200}} {
		got := ops.BindBatches(ids(tt.n))
		if len(got) != tt.want || (tt.want > 0 && len(got[len(got)-1]) != tt.last) {
			t.Errorf("BindBatches(%d): %d batches, want %d (last %d)", tt.n, len(got), tt.want, tt.last)
		}
	}
}

// TestPacedBindGapAndRetry: the second batch waits the gap; a "wait"
// refusal from the store is waited out; another refusal ends the run
// saying how many were bound before it.
func TestPacedBindGapAndRetry(t *testing.T) {
	ck := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	wait := &store.Error{Code: store.ELimit, Message: "cluster \"gz\" took a batch 10s ago: wait 50s between batches", RetryAfter: 50 * time.Second}
	b := &fakeBinder{errs: []error{wait, nil, nil, store.Errorf(store.EForbidden, "host \"x\" belongs to another account")}}
	p := ops.NewPacedBind(b, store.Cluster{ID: 1, Name: "gz"}, ops.BindBatches(ids(1300)), time.Minute, ck)

	pr := p.Step(context.Background())
	if pr.Notice != wait.Message || pr.Wait != 50*time.Second+ops.RetrySlack || pr.Batch != 0 {
		t.Fatalf("after the store's wait: %+v, want its notice and 50 s", pr)
	}
	ck.Advance(50 * time.Second)
	if pr = p.Step(context.Background()); pr.Batch != 0 || len(b.calls) != 1 {
		t.Fatalf("stepped before the RetryAfter: %+v (calls %d)", pr, len(b.calls))
	}
	ck.Advance(ops.RetrySlack)
	pr = p.Step(context.Background())
	if pr.Batch != 1 || pr.Done != 500 || pr.Last == nil || pr.Wait != time.Minute+ops.RetrySlack {
		t.Fatalf("first batch: %+v", pr)
	}
	if got := pr.Line(""); got != "[#######.............] 500/1300 hosts, batch 2/3, next in 60s" {
		t.Errorf("Line = %q", got)
	}
	ck.Advance(30 * time.Second)
	if pr = p.Step(context.Background()); pr.Batch != 1 || pr.Wait != 30*time.Second+ops.RetrySlack {
		t.Fatalf("30 s into the gap: %+v", pr)
	}
	ck.Advance(31 * time.Second)
	if pr = p.Step(context.Background()); pr.Batch != 2 || pr.Done != 1000 {
		t.Fatalf("second batch: %+v", pr)
	}
	ck.Advance(time.Minute + ops.RetrySlack)
	pr = p.Step(context.Background())
	if !pr.Finished || pr.Err == nil || pr.Done != 1000 {
		t.Fatalf("refused third batch: %+v", pr)
	}
	if want := "batch 3/3 refused: host \"x\" belongs to another account; 1000 of 1300 hosts were bound before it"; pr.Err.Error() != want {
		t.Errorf("err %q, want %q", pr.Err, want)
	}
	if got := store.ErrorCode(pr.Err); got != store.EForbidden {
		t.Errorf("code %q, want the store's %q", got, store.EForbidden)
	}
	for i, c := range b.calls {
		if len(c) > store.BindBatchMax {
			t.Errorf("call %d: %d hosts, more than %d", i, len(c), store.BindBatchMax)
		}
	}
	if !strings.Contains(p.Interrupted().Error(), "interrupted before batch 3/3: 1000 of 1300 hosts bound") {
		t.Errorf("Interrupted: %v", p.Interrupted())
	}
}
