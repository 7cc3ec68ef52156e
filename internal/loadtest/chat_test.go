package loadtest

import (
	"testing"
	"time"
)

// TestHistogram checks the latency histogram against values whose
// quantiles are known: each within a bucket's precision (1/32 above),
// never above the maximum.
func TestHistogram(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100000; v++ {
		h.add(v * 1000) // 1 µs … 100 ms
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{1, 100 * time.Millisecond},
	} {
		got := h.quantile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*(1+1.0/32) {
			t.Errorf("quantile %v = %s, want %s to %s", tc.q, got, tc.want, time.Duration(float64(tc.want)*(1+1.0/32)))
		}
	}
	if got := h.quantile(1); got != 100*time.Millisecond {
		t.Errorf("max quantile %s, want the maximum 100ms", got)
	}
	for _, v := range []int64{0, 1, 31, 32, 33, 63, 64, 1 << 40} {
		if b := bucketOf(v); bucketValue(b) < v || (b > 0 && bucketValue(b-1) >= v) {
			t.Errorf("value %d in bucket %d, whose range ends at %d (previous %d)", v, b, bucketValue(b), bucketValue(b-1))
		}
	}
}
