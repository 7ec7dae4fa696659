package collector

import (
	"slices"
	"sort"
)

// seqSet records which sequence numbers of one agent have been stored.
// Agents number events 1, 2, 3... so the set is normally just hi; records
// that arrive out of order are kept as runs of consecutive numbers above
// hi, which also keeps a large gap (events lost before the relay) cheap.
type seqSet struct {
	hi   uint64 // every seq in 1..hi has been seen
	runs []run  // seen seqs above hi+1: sorted, disjoint, not adjacent
	n    uint64 // distinct seqs seen
}

type run struct{ lo, hi uint64 }

func (s *seqSet) has(seq uint64) bool {
	if seq <= s.hi {
		return true
	}
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].hi >= seq })
	return i < len(s.runs) && s.runs[i].lo <= seq
}

// add marks seq as seen and reports whether it was new.
func (s *seqSet) add(seq uint64) bool {
	if seq == s.hi+1 && (len(s.runs) == 0 || s.runs[0].lo > seq+1) {
		s.hi = seq // in-order fast path
		s.n++
		return true
	}
	if s.has(seq) {
		return false
	}
	s.n++
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].lo > seq })
	joinPrev := i > 0 && s.runs[i-1].hi+1 == seq
	joinNext := i < len(s.runs) && s.runs[i].lo == seq+1
	switch {
	case joinPrev && joinNext:
		s.runs[i-1].hi = s.runs[i].hi
		s.runs = slices.Delete(s.runs, i, i+1)
	case joinPrev:
		s.runs[i-1].hi = seq
	case joinNext:
		s.runs[i].lo = seq
	default:
		s.runs = slices.Insert(s.runs, i, run{seq, seq})
	}
	if s.runs[0].lo == s.hi+1 { // the gap closed: fold the run into hi
		s.hi = s.runs[0].hi
		s.runs = slices.Delete(s.runs, 0, 1)
	}
	switch {
	case len(s.runs) == 0:
		s.runs = nil
	case cap(s.runs) > 64 && len(s.runs) < cap(s.runs)/4:
		s.runs = slices.Clip(slices.Clone(s.runs))
	}
	return true
}
