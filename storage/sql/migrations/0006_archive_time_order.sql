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
