package mam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// Sizes of the writer: how many messages may wait for a commit (senders
// then wait for room, which slows them down instead of growing memory) and
// how many entries one transaction takes at most.
const (
	writerQueue  = 4096
	writerBatch  = 512
	writeTimeout = 30 * time.Second
)

// errStopped is what a write gets once the module is stopping.
var errStopped = errors.New("mam: archive writer stopped")

// writer is the group-commit writer: one goroutine takes every write that
// is waiting, stores them in one Archives.Append (one transaction), and
// tells each caller the outcome. While one transaction commits, the next
// writes gather, so the cost of a commit is shared by all the messages
// that arrived meanwhile, and a lone message is written at once.
//
// The writer gives each write its stamp and ids as it takes it, so that
// stamps rise strictly in the order of the commits, and after the latest
// stamp stored when it started, across restarts whatever the clock did: an
// archive is read in stamp order, and a client paging forwards from the
// newest message it saw must not miss one that was stamped earlier but
// committed later. (Two servers writing to one database would need one
// source of stamps; there is one server per database.)
type writer struct {
	store storage.Archives
	log   *slog.Logger
	queue chan *write
	batch int
	now   func() time.Time
	last  time.Time // the stamp of the last write taken; the goroutine's own

	// mu guards stopped: submitters hold it shared while they enqueue,
	// so that once stop holds it exclusively no write can enter the queue
	// and the goroutine may drain it and end.
	mu      sync.RWMutex
	stopped bool
	done    chan struct{} // closed when stop is asked
	ended   chan struct{} // closed when the goroutine has ended
}

// write is one caller's entries and where it waits for the commit. The
// writer fills each entry's Stamp and ID.
type write struct {
	entries []storage.ArchiveEntry
	result  chan error
}

// newWriter starts a writer whose stamps come from now and follow last,
// the latest stamp already stored (Archives.LastStamp).
func newWriter(store storage.Archives, log *slog.Logger, queue, batch int, now func() time.Time, last time.Time) *writer {
	w := &writer{
		store: store, log: log, batch: batch, now: now, last: last,
		queue: make(chan *write, queue),
		done:  make(chan struct{}),
		ended: make(chan struct{}),
	}
	go w.run()
	return w
}

// append stores entries, with a stamp and an id it gives them, and returns
// once they are committed, or the commit failed, or ctx ended (the write
// may still be committed then). Once it returns nil, each entry holds the
// Stamp and ID it was stored with.
func (w *writer) append(ctx context.Context, entries []storage.ArchiveEntry) error {
	wr := &write{entries: entries, result: make(chan error, 1)}
	w.mu.RLock()
	if w.stopped {
		w.mu.RUnlock()
		return errStopped
	}
	select {
	case w.queue <- wr:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	select {
	case err := <-wr.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer's goroutine: it commits batches until stopped, then
// commits what is left in the queue.
func (w *writer) run() {
	defer close(w.ended)
	for {
		select {
		case first := <-w.queue:
			w.commit(first)
		case <-w.done:
			for {
				select {
				case wr := <-w.queue:
					w.commit(wr)
				default:
					return
				}
			}
		}
	}
}

// commit stores first and whatever else is waiting, up to the batch size,
// in one transaction.
func (w *writer) commit(first *write) {
	writes := []*write{first}
	w.stamp(first)
	n := len(first.entries)
gather:
	for n < w.batch {
		select {
		case wr := <-w.queue:
			w.stamp(wr)
			writes = append(writes, wr)
			n += len(wr.entries)
		default:
			break gather
		}
	}
	entries := first.entries
	if len(writes) > 1 {
		entries = make([]storage.ArchiveEntry, 0, n)
		for _, wr := range writes {
			entries = append(entries, wr.entries...)
		}
	}
	// A failed batch fails every write in it: with random ids and no
	// foreign key no single entry can make it fail, so what failed is the
	// database, and trying each write alone would only make every sender
	// wait once per write (and Stop once per queued write).
	err := w.appendNow(entries)
	for _, wr := range writes {
		wr.result <- err
	}
}

// stamp gives wr's entries one stamp, later than the last write's by a
// microsecond at least (the clock may stand still between two writes, or
// step back), and each its id.
func (w *writer) stamp(wr *write) {
	t := w.now().UTC().Truncate(time.Microsecond)
	if !t.After(w.last) {
		t = w.last.Add(time.Microsecond)
	}
	w.last = t
	for i := range wr.entries {
		wr.entries[i].Stamp = t
		wr.entries[i].ID = storage.NewArchiveID(t)
	}
}

// appendNow stores entries in one transaction.
func (w *writer) appendNow(entries []storage.ArchiveEntry) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := w.store.Append(ctx, entries); err != nil {
		return fmt.Errorf("mam: append %d messages: %w", len(entries), err)
	}
	return nil
}

// stop lets the writer commit what is queued and waits until it has ended.
func (w *writer) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		<-w.ended
		return
	}
	w.stopped = true
	w.mu.Unlock()
	close(w.done)
	<-w.ended
}
