package tui

import (
	"context"
	"sync"
	"time"
)

// listCache keeps the last whole list a PageFunc loaded (the clusters: a
// thousand of them take the store about 100 ms with their counts), so
// that paging and sorting within one refresh period reuse it instead of
// asking again. Refresh invalidates it: the live refresh always reloads.
// It is shared with the PageFunc's goroutine, hence the lock.
type listCache[T any] struct {
	mu   sync.Mutex
	ttl  time.Duration
	at   time.Time
	list []T
	ok   bool
}

func newListCache[T any](ttl time.Duration) *listCache[T] { return &listCache[T]{ttl: ttl} }

// get returns the cached list, or loads and keeps it.
func (c *listCache[T]) get(ctx context.Context, load func(context.Context) ([]T, error)) ([]T, error) {
	c.mu.Lock()
	if c.ok && time.Since(c.at) < c.ttl {
		l := c.list
		c.mu.Unlock()
		return l, nil
	}
	c.mu.Unlock()
	l, err := load(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.list, c.at, c.ok = l, time.Now(), true
	c.mu.Unlock()
	return l, nil
}

// invalidate makes the next get load again.
func (c *listCache[T]) invalidate() {
	c.mu.Lock()
	c.ok = false
	c.mu.Unlock()
}

// clusterAccounts maps cluster ids to their account. A cluster never
// changes account, so an entry never goes stale; an unknown id (a new
// cluster) reloads the map once.
type clusterAccounts struct {
	mu sync.Mutex
	m  map[int64]int64
}

// accountOf returns the account of each of ids (0 for an id that is not
// a cluster any more).
func (ca *clusterAccounts) accountOf(ctx context.Context, b Backend, ids []int64) (map[int64]int64, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for _, id := range ids {
		if _, ok := ca.m[id]; !ok {
			cs, err := b.ListClusters(ctx, 0)
			if err != nil {
				return nil, err
			}
			ca.m = make(map[int64]int64, len(cs))
			for _, c := range cs {
				ca.m[c.ID] = c.AccountID
			}
			break
		}
	}
	out := make(map[int64]int64, len(ids))
	for _, id := range ids {
		out[id] = ca.m[id]
	}
	return out, nil
}
