-- Archives in time order, with two indexes per archive instead of four:
-- every index entry an archived message adds is one more B-tree page that
-- its commit writes (the archives' pages are scattered, one per owner), and
-- that was most of the cost of archiving. An archive is read in (stamp,
-- seq) order; ids carry their stamp (storage.NewArchiveID), so that an id
-- is found through the time index and needs no index of its own; the
-- global stamp index of Expire stays (its entries go to its right edge).
DROP INDEX archive_messages_owner;
DROP INDEX archive_messages_id;
DROP INDEX archive_messages_with;
DROP INDEX archive_messages_stamp;

-- Paging through an archive, queries by time, its bounds, Purge, ids.
CREATE INDEX archive_messages_time ON archive_messages (domain, local, stamp, seq);
-- Paging through the messages exchanged with one JID.
CREATE INDEX archive_messages_with_time ON archive_messages (domain, local, with_bare, stamp, seq);
-- Ids from before, which carry no stamp (26 characters; every new id has
-- 32): partial, so that no new row writes to it.
CREATE INDEX archive_messages_legacy_id ON archive_messages (domain, local, id) WHERE length(id) <> 32;

-- Rows archived before this migration were stamped by the clock in the
-- archiving filter, not in commit order: among messages archived within
-- milliseconds of each other, (stamp, seq) order may differ from the seq
-- order they were paged in before, once, for a client that stopped paging
-- between two of them.
