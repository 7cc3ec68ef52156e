package muc_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
)

// TestArchiveLockedRoom checks that a room still locked after its
// creation (§10.1) does not exist for an archive query by anyone but its
// owner (item-not-found, as for entering it), while the owner is told
// what the room is: not archived yet (service-unavailable).
func TestArchiveLockedRoom(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.join("locked", "alice", "")
	alice.subject("locked")
	_, _, answer := bob.mamQuery("locked", "")
	wantError(t, answer, "item-not-found", "cancel")
	_, _, answer = alice.mamQuery("locked", "")
	wantError(t, answer, "service-unavailable", "cancel")
}
