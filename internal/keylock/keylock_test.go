package keylock

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestMap checks that one key's holders take turns and that no mutex
// outlives its holders.
func TestMap(t *testing.T) {
	var (
		l       Map
		wg      sync.WaitGroup
		mu      sync.Mutex
		inside  = map[string]int{}
		overlap bool
	)
	for i := range 200 {
		wg.Go(func() {
			key := fmt.Sprint(i % 3)
			unlock := l.Lock(key)
			defer unlock()
			mu.Lock()
			inside[key]++
			overlap = overlap || inside[key] > 1
			mu.Unlock()
			time.Sleep(10 * time.Microsecond)
			mu.Lock()
			inside[key]--
			mu.Unlock()
		})
	}
	wg.Wait()
	if overlap {
		t.Error("two holders of one key's lock at once")
	}
	if n := l.size(); n != 0 {
		t.Errorf("%d locks left after all were released", n)
	}
}
