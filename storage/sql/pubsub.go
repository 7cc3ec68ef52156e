package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// pubSub implements storage.PubSub over the pubsub_* tables (migration
// 0007).
type pubSub struct{ db *DB }

var _ storage.PubSub = pubSub{}

// PubSub returns the pubsub services' nodes and items (XEP-0060, XEP-0163).
func (db *DB) PubSub() storage.PubSub { return pubSub{db} }

// errNoNode is returned (wrapped) for a node that does not exist.
var errNoNode = fmt.Errorf("node %w", storage.ErrNotFound)

// rowsQuerier is what *sql.DB and *sql.Tx have in common that reads of
// many rows need.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// nodeID returns the id of the service's node, errNoNode if there is none.
// With lock, the node's row stays as it is until tx ends, so that writes
// to one node (a publish and its trimming) take turns.
func (s pubSub) nodeID(ctx context.Context, q querier, service jid.JID, node string, lock bool) (int64, error) {
	domain, local := ownerKey(service)
	query := `SELECT id FROM pubsub_nodes WHERE domain = $1 AND local = $2 AND name = $3`
	if lock {
		query += s.db.dialect.forUpdate
	}
	var id int64
	err := q.QueryRowContext(ctx, query, domain, local, node).Scan(&id)
	if err == sql.ErrNoRows {
		return 0, errNoNode
	}
	return id, err
}

// readNode runs fn with the node's id in a read-only transaction, so that
// what fn reads is of the node it found.
func (s pubSub) readNode(ctx context.Context, service jid.JID, node string, fn func(tx *sql.Tx, id int64) error) error {
	return s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nodeID(ctx, tx, service, node, false)
		if err != nil {
			return err
		}
		return fn(tx, id)
	})
}

// writeNode runs fn with the node's id in a transaction that holds the
// node's row, so that writes to one node take turns and none goes to a
// node deleted meanwhile.
func (s pubSub) writeNode(ctx context.Context, service jid.JID, node string, fn func(tx *sql.Tx, id int64) error) error {
	return s.db.inTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nodeID(ctx, tx, service, node, true)
		if err != nil {
			return err
		}
		return fn(tx, id)
	})
}

// nodeErr turns the failure of a write that refers to a node deleted
// meanwhile (PostgreSQL) into errNoNode.
func nodeErr(err error) error {
	if isForeignKeyViolation(err) {
		return errNoNode
	}
	return err
}

// CreateNode inserts the node, its roster groups and its creator's
// affiliation in one transaction; the unique index decides between two
// creations of one name.
func (s pubSub) CreateNode(ctx context.Context, n storage.PubSubNode) error {
	if err := n.Config.Check(); err != nil {
		return fmt.Errorf("storage: create node %q on %s: %w", n.Name, n.Service.Bare(), err)
	}
	created := n.Created
	if created.IsZero() {
		created = time.Now()
	}
	domain, local := ownerKey(n.Service)
	c := n.Config
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `
			INSERT INTO pubsub_nodes (domain, local, name, creator, created_at,
				access_model, publish_model, max_items, persist_items, send_last_published_item,
				notify_retract, notify_delete, notify_config, notify_sub,
				deliver_notifications, deliver_payloads, presence_based_delivery,
				title, payload_type, item_expire)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
			ON CONFLICT DO NOTHING RETURNING id`,
			domain, local, n.Name, jidString(n.Creator.Bare()), created.UnixMicro(),
			string(c.AccessModel), string(c.PublishModel), c.MaxItems, c.PersistItems, string(c.SendLast),
			c.NotifyRetract, c.NotifyDelete, c.NotifyConfig, c.NotifySub,
			c.DeliverNotifications, c.DeliverPayloads, c.PresenceBasedDelivery,
			c.Title, c.Type, int64(c.ItemExpire/time.Second)).Scan(&id)
		if err == sql.ErrNoRows {
			return storage.ErrExists
		}
		if err != nil {
			return err
		}
		if err := insertGroups(ctx, tx, id, c.RosterGroupsAllowed); err != nil {
			return err
		}
		if n.Creator.Equal(jid.JID{}) {
			return nil
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO pubsub_affiliations (node_id, jid, affiliation) VALUES ($1, $2, $3)`,
			id, n.Creator.Bare().String(), string(storage.AffiliationOwner))
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: create node %q on %s: %w", n.Name, n.Service.Bare(), err)
	}
	return nil
}

// jidString is j's string form, "" for the zero JID.
func jidString(j jid.JID) string {
	if j.Equal(jid.JID{}) {
		return ""
	}
	return j.String()
}

// insertGroups stores a node's roster groups, once each.
func insertGroups(ctx context.Context, tx *sql.Tx, id int64, groups []string) error {
	for _, g := range groups {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO pubsub_node_groups (node_id, grp) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, g); err != nil {
			return fmt.Errorf("roster group %q: %w", g, err)
		}
	}
	return nil
}

// nodeColumns are the columns scanNode reads, in its order.
const nodeColumns = `id, domain, local, name, creator, created_at,
	access_model, publish_model, max_items, persist_items, send_last_published_item,
	notify_retract, notify_delete, notify_config, notify_sub,
	deliver_notifications, deliver_payloads, presence_based_delivery,
	title, payload_type, item_expire`

// scanNode reads a row of nodeColumns, and returns the node's id.
func scanNode(row interface{ Scan(...any) error }) (int64, storage.PubSubNode, error) {
	var (
		n                                storage.PubSubNode
		c                                = &n.Config
		id, created, maxItems, expire    int64
		domain, local, creator           string
		access, publish, sendLast, title string
	)
	err := row.Scan(&id, &domain, &local, &n.Name, &creator, &created,
		&access, &publish, &maxItems, &c.PersistItems, &sendLast,
		&c.NotifyRetract, &c.NotifyDelete, &c.NotifyConfig, &c.NotifySub,
		&c.DeliverNotifications, &c.DeliverPayloads, &c.PresenceBasedDelivery,
		&title, &c.Type, &expire)
	if err != nil {
		return 0, storage.PubSubNode{}, err
	}
	if n.Service, err = jid.New(local, domain, ""); err != nil {
		return 0, storage.PubSubNode{}, fmt.Errorf("stored service %q@%q: %w", local, domain, err)
	}
	if creator != "" {
		if n.Creator, err = jid.Parse(creator); err != nil {
			return 0, storage.PubSubNode{}, fmt.Errorf("stored creator %q: %w", creator, err)
		}
	}
	n.Created = fromMicro(created)
	c.AccessModel, c.PublishModel = storage.AccessModel(access), storage.PublishModel(publish)
	c.SendLast, c.Title = storage.SendLastPublished(sendLast), title
	c.MaxItems, c.ItemExpire = int(maxItems), time.Duration(expire)*time.Second
	return id, n, nil
}

// Node reads the node and its roster groups in one snapshot.
func (s pubSub) Node(ctx context.Context, service jid.JID, node string) (storage.PubSubNode, error) {
	var n storage.PubSubNode
	err := s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		domain, local := ownerKey(service)
		id, got, err := scanNode(tx.QueryRowContext(ctx,
			`SELECT `+nodeColumns+` FROM pubsub_nodes WHERE domain = $1 AND local = $2 AND name = $3`,
			domain, local, node))
		if err == sql.ErrNoRows {
			return errNoNode
		}
		if err != nil {
			return err
		}
		groups, err := nodeGroups(ctx, tx, `node_id = $1`, id)
		n = got
		n.Config.RosterGroupsAllowed = groups[id]
		return err
	})
	if err != nil {
		return storage.PubSubNode{}, fmt.Errorf("storage: node %q on %s: %w", node, service.Bare(), err)
	}
	return n, nil
}

// nodeGroups returns the roster groups of the nodes that where selects
// from pubsub_node_groups, by node id, sorted.
func nodeGroups(ctx context.Context, q rowsQuerier, where string, args ...any) (map[int64][]string, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT node_id, grp FROM pubsub_node_groups WHERE `+where+` ORDER BY node_id, grp`, args...)
	if err != nil {
		return nil, fmt.Errorf("roster groups: %w", err)
	}
	defer rows.Close()
	groups := map[int64][]string{}
	for rows.Next() {
		var (
			id int64
			g  string
		)
		if err := rows.Scan(&id, &g); err != nil {
			return nil, err
		}
		groups[id] = append(groups[id], g)
	}
	return groups, rows.Err()
}

// Nodes reads the nodes and their roster groups in one snapshot, with one
// query each.
func (s pubSub) Nodes(ctx context.Context, service jid.JID) ([]storage.PubSubNode, error) {
	var list []storage.PubSubNode
	err := s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		domain, local := ownerKey(service)
		rows, err := tx.QueryContext(ctx,
			`SELECT `+nodeColumns+` FROM pubsub_nodes WHERE domain = $1 AND local = $2 ORDER BY name`,
			domain, local)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			id, n, err := scanNode(rows)
			if err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			list = append(list, n)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		groups, err := nodeGroups(ctx, tx, `node_id IN (SELECT id FROM pubsub_nodes WHERE domain = $1 AND local = $2)`,
			domain, local)
		for i, id := range ids {
			list[i].Config.RosterGroupsAllowed = groups[id]
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: nodes of %s: %w", service.Bare(), err)
	}
	return list, nil
}

// NodeCount counts by the name index.
func (s pubSub) NodeCount(ctx context.Context, service jid.JID) (int, error) {
	domain, local := ownerKey(service)
	var n int
	err := s.db.sql.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM pubsub_nodes WHERE domain = $1 AND local = $2`, domain, local).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("storage: count nodes of %s: %w", service.Bare(), err)
	}
	return n, nil
}

// ConfigureNode updates the node's row and replaces its roster groups in
// one transaction.
func (s pubSub) ConfigureNode(ctx context.Context, service jid.JID, node string, c storage.NodeConfig) error {
	if err := c.Check(); err != nil {
		return fmt.Errorf("storage: configure node %q on %s: %w", node, service.Bare(), err)
	}
	err := s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		_, err := tx.ExecContext(ctx, `
			UPDATE pubsub_nodes SET access_model = $2, publish_model = $3, max_items = $4,
				persist_items = $5, send_last_published_item = $6,
				notify_retract = $7, notify_delete = $8, notify_config = $9, notify_sub = $10,
				deliver_notifications = $11, deliver_payloads = $12, presence_based_delivery = $13,
				title = $14, payload_type = $15, item_expire = $16
			WHERE id = $1`,
			id, string(c.AccessModel), string(c.PublishModel), c.MaxItems, c.PersistItems, string(c.SendLast),
			c.NotifyRetract, c.NotifyDelete, c.NotifyConfig, c.NotifySub,
			c.DeliverNotifications, c.DeliverPayloads, c.PresenceBasedDelivery,
			c.Title, c.Type, int64(c.ItemExpire/time.Second))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pubsub_node_groups WHERE node_id = $1`, id); err != nil {
			return err
		}
		return insertGroups(ctx, tx, id, c.RosterGroupsAllowed)
	})
	if err != nil {
		return fmt.Errorf("storage: configure node %q on %s: %w", node, service.Bare(), err)
	}
	return nil
}

// DeleteNode deletes the node's row; the foreign keys delete the rest.
func (s pubSub) DeleteNode(ctx context.Context, service jid.JID, node string) error {
	domain, local := ownerKey(service)
	res, err := s.db.sql.ExecContext(ctx,
		`DELETE FROM pubsub_nodes WHERE domain = $1 AND local = $2 AND name = $3`, domain, local, node)
	if err := oneRow(res, err, errNoNode); err != nil {
		return fmt.Errorf("storage: delete node %q on %s: %w", node, service.Bare(), err)
	}
	return nil
}

// DeleteService deletes the service's nodes' rows, and the foreign keys
// the rest.
func (s pubSub) DeleteService(ctx context.Context, service jid.JID) error {
	if _, err := deleteService(ctx, s.db.sql, service); err != nil {
		return fmt.Errorf("storage: delete pubsub service %s: %w", service.Bare(), err)
	}
	return nil
}

// execer is what a transaction and the database have in common, for
// writes that run in either.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func deleteService(ctx context.Context, e execer, service jid.JID) (sql.Result, error) {
	domain, local := ownerKey(service)
	return e.ExecContext(ctx, `DELETE FROM pubsub_nodes WHERE domain = $1 AND local = $2`, domain, local)
}

// deleteAccountPubSub deletes, in tx, the PEP service of the account and
// its affiliations and subscriptions with every other service's nodes, so
// that a new account of the same name inherits none of them.
func deleteAccountPubSub(ctx context.Context, tx *sql.Tx, domain, local string) error {
	account, err := jid.New(local, domain, "")
	if err != nil {
		return fmt.Errorf("account %q@%q: %w", local, domain, err)
	}
	if _, err := deleteService(ctx, tx, account); err != nil {
		return fmt.Errorf("pep service: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pubsub_affiliations WHERE jid = $1`, account.String()); err != nil {
		return fmt.Errorf("pubsub affiliations: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pubsub_subscriptions WHERE subscriber_bare = $1`, account.String()); err != nil {
		return fmt.Errorf("pubsub subscriptions: %w", err)
	}
	return nil
}

// Publish locks the node, replaces the item by deleting and inserting it
// (so that it takes a new seq, the newest), and trims, in one transaction.
func (s pubSub) Publish(ctx context.Context, service jid.JID, node string, item storage.PubSubItem, maxItems int) ([]string, error) {
	if item.ID == "" {
		return nil, fmt.Errorf("storage: publish to node %q on %s: an item without id", node, service.Bare())
	}
	published := item.Published
	if published.IsZero() {
		published = time.Now()
	}
	var trimmed []string
	err := s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var err error
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM pubsub_items WHERE node_id = $1 AND id = $2`, id, item.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO pubsub_items (node_id, id, publisher, published, payload) VALUES ($1, $2, $3, $4, $5)`,
			id, item.ID, jidString(item.Publisher), published.UnixMicro(), notNil(item.Payload)); err != nil {
			return nodeErr(err)
		}
		trimmed, err = trimItems(ctx, tx, id, maxItems)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: publish item %q to node %q on %s: %w", item.ID, node, service.Bare(), err)
	}
	return trimmed, nil
}

// Trim locks the node and trims its items.
func (s pubSub) Trim(ctx context.Context, service jid.JID, node string, maxItems int) ([]string, error) {
	var trimmed []string
	err := s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var err error
		trimmed, err = trimItems(ctx, tx, id, maxItems)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: trim node %q on %s to %d items: %w", node, service.Bare(), maxItems, err)
	}
	return trimmed, nil
}

// trimItems deletes the items of the node older than its maxItems newest
// and returns their ids, oldest first. It finds the oldest item to keep
// through the order index, so that a node that has no more than maxItems
// costs one row read, however many it keeps.
func trimItems(ctx context.Context, tx *sql.Tx, node int64, maxItems int) ([]string, error) {
	if maxItems == storage.MaxItemsMax {
		return nil, nil
	}
	if maxItems < 0 {
		return nil, fmt.Errorf("max items %d negative", maxItems)
	}
	cond, args := `node_id = $1`, []any{node}
	if maxItems > 0 {
		var oldestKept int64
		err := tx.QueryRowContext(ctx,
			`SELECT seq FROM pubsub_items WHERE node_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2`,
			node, maxItems-1).Scan(&oldestKept)
		if err == sql.ErrNoRows {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("trim: %w", err)
		}
		cond, args = `node_id = $1 AND seq < $2`, []any{node, oldestKept}
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM pubsub_items WHERE `+cond+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("trim: %w", err)
	}
	var trimmed []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trim: %w", err)
		}
		trimmed = append(trimmed, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("trim: %w", err)
	}
	if len(trimmed) == 0 {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE `+cond, args...); err != nil {
		return nil, fmt.Errorf("trim: %w", err)
	}
	return trimmed, nil
}

// Items reads the node's id and its items in one snapshot, newest first
// through the order index.
func (s pubSub) Items(ctx context.Context, service jid.JID, node string, q storage.PubSubItemQuery) ([]storage.PubSubItem, error) {
	var items []storage.PubSubItem
	err := s.readNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var err error
		items, err = queryItems(ctx, tx, id, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: items of node %q on %s: %w", node, service.Bare(), err)
	}
	return items, nil
}

func queryItems(ctx context.Context, tx *sql.Tx, node int64, q storage.PubSubItemQuery) ([]storage.PubSubItem, error) {
	f := &archiveFilter{}
	f.add("node_id = ?", node)
	if len(q.IDs) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(q.IDs)), ", ")
		args := make([]any, len(q.IDs))
		for i, id := range q.IDs {
			args[i] = id
		}
		f.add("id IN ("+marks+")", args...)
	}
	query := `SELECT id, publisher, published, payload FROM pubsub_items WHERE ` + f.clause() + ` ORDER BY seq DESC`
	if q.Max > 0 {
		f.args = append(f.args, q.Max)
		query += fmt.Sprintf(" LIMIT $%d", len(f.args))
	}
	rows, err := tx.QueryContext(ctx, query, f.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []storage.PubSubItem
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// scanItem reads a row of the columns that before are for, then id,
// publisher, published, payload.
func scanItem(row interface{ Scan(...any) error }, before ...any) (storage.PubSubItem, error) {
	var (
		it        storage.PubSubItem
		publisher string
		published int64
	)
	if err := row.Scan(append(before, &it.ID, &publisher, &published, &it.Payload)...); err != nil {
		return storage.PubSubItem{}, err
	}
	it.Published = fromMicro(published)
	if publisher != "" {
		var err error
		if it.Publisher, err = jid.Parse(publisher); err != nil {
			return storage.PubSubItem{}, fmt.Errorf("stored publisher %q of item %q: %w", publisher, it.ID, err)
		}
	}
	return it, nil
}

// LastItem reads the newest item through the order index.
func (s pubSub) LastItem(ctx context.Context, service jid.JID, node string) (storage.PubSubItem, error) {
	var items []storage.PubSubItem
	err := s.readNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var err error
		items, err = queryItems(ctx, tx, id, storage.PubSubItemQuery{Max: 1})
		if err == nil && len(items) == 0 {
			err = fmt.Errorf("item %w", storage.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return storage.PubSubItem{}, fmt.Errorf("storage: last item of node %q on %s: %w", node, service.Bare(), err)
	}
	return items[0], nil
}

// LastItems picks each node's greatest seq through the order index.
func (s pubSub) LastItems(ctx context.Context, service jid.JID) (map[string]storage.PubSubItem, error) {
	domain, local := ownerKey(service)
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT n.name, i.id, i.publisher, i.published, i.payload
		FROM pubsub_nodes n JOIN pubsub_items i ON i.node_id = n.id
		WHERE n.domain = $1 AND n.local = $2
			AND i.seq = (SELECT MAX(seq) FROM pubsub_items WHERE node_id = n.id)`, domain, local)
	if err != nil {
		return nil, fmt.Errorf("storage: last items on %s: %w", service.Bare(), err)
	}
	defer rows.Close()
	last := map[string]storage.PubSubItem{}
	for rows.Next() {
		var name string
		it, err := scanItem(rows, &name)
		if err != nil {
			return nil, fmt.Errorf("storage: last items on %s: %w", service.Bare(), err)
		}
		last[name] = it
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: last items on %s: %w", service.Bare(), err)
	}
	return last, nil
}

// ExpireItems picks the expired items of the nodes that expire items, by
// their order index, and deletes them.
func (s pubSub) ExpireItems(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.db.sql.ExecContext(ctx, `
		DELETE FROM pubsub_items WHERE seq IN (
			SELECT i.seq FROM pubsub_nodes n JOIN pubsub_items i ON i.node_id = n.id
			WHERE n.item_expire > 0 AND i.published < $1 - n.item_expire * 1000000
			ORDER BY i.seq LIMIT $2)`,
		now.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("storage: expire pubsub items: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("storage: expire pubsub items: %w", err)
	}
	return n, nil
}

// ItemCount counts by the order index.
func (s pubSub) ItemCount(ctx context.Context, service jid.JID, node string) (int, error) {
	var n int
	err := s.readNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pubsub_items WHERE node_id = $1`, id).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("storage: count items of node %q on %s: %w", node, service.Bare(), err)
	}
	return n, nil
}

// Retract deletes the item by the id index.
func (s pubSub) Retract(ctx context.Context, service jid.JID, node, item string) (bool, error) {
	var found bool
	err := s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE node_id = $1 AND id = $2`, id, item)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		found = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("storage: retract item %q from node %q on %s: %w", item, node, service.Bare(), err)
	}
	return found, nil
}

// Purge deletes the node's items.
func (s pubSub) Purge(ctx context.Context, service jid.JID, node string) (int64, error) {
	var n int64
	err := s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE node_id = $1`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: purge node %q on %s: %w", node, service.Bare(), err)
	}
	return n, nil
}

// checkAffiliation refuses an affiliation XEP-0060 §4.1 does not name.
func checkAffiliation(aff storage.Affiliation) error {
	switch aff {
	case storage.AffiliationOwner, storage.AffiliationPublisher, storage.AffiliationPublishOnly,
		storage.AffiliationMember, storage.AffiliationNone, storage.AffiliationOutcast:
		return nil
	}
	return fmt.Errorf("affiliation %q unknown", aff)
}

// Affiliation reads the node and the affiliation in one snapshot, so that
// a missing node is told from a missing affiliation.
func (s pubSub) Affiliation(ctx context.Context, service jid.JID, node string, who jid.JID) (storage.Affiliation, error) {
	aff := storage.AffiliationNone
	err := s.readNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var a string
		err := tx.QueryRowContext(ctx,
			`SELECT affiliation FROM pubsub_affiliations WHERE node_id = $1 AND jid = $2`,
			id, who.Bare().String()).Scan(&a)
		if err == sql.ErrNoRows {
			return nil
		}
		aff = storage.Affiliation(a)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("storage: affiliation of %s with node %q on %s: %w", who.Bare(), node, service.Bare(), err)
	}
	return aff, nil
}

// SetAffiliation upserts or deletes the row.
func (s pubSub) SetAffiliation(ctx context.Context, service jid.JID, node string, who jid.JID, aff storage.Affiliation) error {
	err := checkAffiliation(aff)
	if err == nil {
		err = s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
			if aff == storage.AffiliationNone {
				_, err = tx.ExecContext(ctx,
					`DELETE FROM pubsub_affiliations WHERE node_id = $1 AND jid = $2`, id, who.Bare().String())
				return err
			}
			_, err = tx.ExecContext(ctx, `
				INSERT INTO pubsub_affiliations (node_id, jid, affiliation) VALUES ($1, $2, $3)
				ON CONFLICT (node_id, jid) DO UPDATE SET affiliation = excluded.affiliation`,
				id, who.Bare().String(), string(aff))
			return nodeErr(err)
		})
	}
	if err != nil {
		return fmt.Errorf("storage: set affiliation of %s with node %q on %s to %s: %w",
			who.Bare(), node, service.Bare(), aff, err)
	}
	return nil
}

// Affiliations reads the node's affiliations by its primary key.
func (s pubSub) Affiliations(ctx context.Context, service jid.JID, node string) ([]storage.PubSubAffiliation, error) {
	var list []storage.PubSubAffiliation
	err := s.readNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var err error
		list, err = queryAffiliations(ctx, tx, `
			SELECT n.name, a.jid, a.affiliation FROM pubsub_affiliations a JOIN pubsub_nodes n ON n.id = a.node_id
			WHERE a.node_id = $1 ORDER BY a.jid`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: affiliations with node %q on %s: %w", node, service.Bare(), err)
	}
	return list, nil
}

// AffiliationsOf reads the JID's affiliations by the jid index, joined to
// the service's nodes.
func (s pubSub) AffiliationsOf(ctx context.Context, service, who jid.JID) ([]storage.PubSubAffiliation, error) {
	domain, local := ownerKey(service)
	list, err := queryAffiliations(ctx, s.db.sql, `
		SELECT n.name, a.jid, a.affiliation FROM pubsub_affiliations a JOIN pubsub_nodes n ON n.id = a.node_id
		WHERE a.jid = $1 AND n.domain = $2 AND n.local = $3 ORDER BY n.name`,
		who.Bare().String(), domain, local)
	if err != nil {
		return nil, fmt.Errorf("storage: affiliations of %s on %s: %w", who.Bare(), service.Bare(), err)
	}
	return list, nil
}

// queryAffiliations runs a query of node name, jid, affiliation.
func queryAffiliations(ctx context.Context, q rowsQuerier, query string, args ...any) ([]storage.PubSubAffiliation, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []storage.PubSubAffiliation
	for rows.Next() {
		var (
			a      storage.PubSubAffiliation
			j, aff string
		)
		if err := rows.Scan(&a.Node, &j, &aff); err != nil {
			return nil, err
		}
		if a.JID, err = jid.Parse(j); err != nil {
			return nil, fmt.Errorf("stored affiliation jid %q: %w", j, err)
		}
		a.Affiliation = storage.Affiliation(aff)
		list = append(list, a)
	}
	return list, rows.Err()
}

// checkState refuses a subscription state the store does not keep.
func checkState(state storage.SubscriptionState) error {
	switch state {
	case storage.SubscriptionSubscribed, storage.SubscriptionPending, storage.SubscriptionUnconfigured:
		return nil
	}
	return fmt.Errorf("subscription state %q unknown", state)
}

// newSubID returns a random subscription id (128 bits, base32).
func newSubID() string { return rand.Text() }

// Subscribe inserts the subscription unless the primary key finds one, and
// reads whichever is there, in one transaction.
func (s pubSub) Subscribe(ctx context.Context, service jid.JID, node string, who jid.JID, state storage.SubscriptionState) (storage.PubSubSubscription, bool, error) {
	var (
		sub     storage.PubSubSubscription
		created bool
	)
	err := checkState(state)
	if err == nil {
		err = s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
			res, err := tx.ExecContext(ctx, `
				INSERT INTO pubsub_subscriptions (node_id, subscriber_bare, subscriber_resource, subid, state)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
				id, who.Bare().String(), who.Resourcepart(), newSubID(), string(state))
			if err != nil {
				return nodeErr(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			created = n > 0
			sub, err = subscription(ctx, tx, id, who)
			return err
		})
	}
	if err != nil {
		return storage.PubSubSubscription{}, false, fmt.Errorf("storage: subscribe %s to node %q on %s: %w",
			who, node, service.Bare(), err)
	}
	return sub, created, nil
}

// subscription reads who's subscription to the node by its primary key.
func subscription(ctx context.Context, q rowsQuerier, id int64, who jid.JID) (storage.PubSubSubscription, error) {
	list, err := querySubscriptions(ctx, q, `
		SELECT n.name, s.subscriber_bare, s.subscriber_resource, s.subid, s.state
		FROM pubsub_subscriptions s JOIN pubsub_nodes n ON n.id = s.node_id
		WHERE s.node_id = $1 AND s.subscriber_bare = $2 AND s.subscriber_resource = $3`,
		id, who.Bare().String(), who.Resourcepart())
	if err != nil {
		return storage.PubSubSubscription{}, err
	}
	if len(list) == 0 {
		return storage.PubSubSubscription{}, fmt.Errorf("subscription %w", storage.ErrNotFound)
	}
	return list[0], nil
}

// Subscription reads the node and the subscription in one snapshot.
func (s pubSub) Subscription(ctx context.Context, service jid.JID, node string, who jid.JID) (storage.PubSubSubscription, error) {
	var sub storage.PubSubSubscription
	err := s.readNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var err error
		sub, err = subscription(ctx, tx, id, who)
		return err
	})
	if err != nil {
		return storage.PubSubSubscription{}, fmt.Errorf("storage: subscription of %s to node %q on %s: %w",
			who, node, service.Bare(), err)
	}
	return sub, nil
}

// SetSubscriptionState updates the row by its primary key.
func (s pubSub) SetSubscriptionState(ctx context.Context, service jid.JID, node string, who jid.JID, state storage.SubscriptionState) error {
	err := checkState(state)
	if err == nil {
		err = s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
			res, err := tx.ExecContext(ctx, `
				UPDATE pubsub_subscriptions SET state = $4
				WHERE node_id = $1 AND subscriber_bare = $2 AND subscriber_resource = $3`,
				id, who.Bare().String(), who.Resourcepart(), string(state))
			return oneRow(res, err, fmt.Errorf("subscription %w", storage.ErrNotFound))
		})
	}
	if err != nil {
		return fmt.Errorf("storage: set subscription of %s to node %q on %s to %s: %w",
			who, node, service.Bare(), state, err)
	}
	return nil
}

// Unsubscribe deletes the row by its primary key, if the subid matches.
func (s pubSub) Unsubscribe(ctx context.Context, service jid.JID, node string, who jid.JID, subID string) error {
	err := s.writeNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		query := `DELETE FROM pubsub_subscriptions
			WHERE node_id = $1 AND subscriber_bare = $2 AND subscriber_resource = $3`
		args := []any{id, who.Bare().String(), who.Resourcepart()}
		if subID != "" {
			query += ` AND subid = $4`
			args = append(args, subID)
		}
		res, err := tx.ExecContext(ctx, query, args...)
		return oneRow(res, err, fmt.Errorf("subscription %w", storage.ErrNotFound))
	})
	if err != nil {
		return fmt.Errorf("storage: unsubscribe %s from node %q on %s: %w", who, node, service.Bare(), err)
	}
	return nil
}

// Subscriptions reads the node's subscriptions by the primary key.
func (s pubSub) Subscriptions(ctx context.Context, service jid.JID, node string) ([]storage.PubSubSubscription, error) {
	var list []storage.PubSubSubscription
	err := s.readNode(ctx, service, node, func(tx *sql.Tx, id int64) error {
		var err error
		list, err = querySubscriptions(ctx, tx, `
			SELECT n.name, s.subscriber_bare, s.subscriber_resource, s.subid, s.state
			FROM pubsub_subscriptions s JOIN pubsub_nodes n ON n.id = s.node_id
			WHERE s.node_id = $1 ORDER BY s.subscriber_bare, s.subscriber_resource`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: subscriptions to node %q on %s: %w", node, service.Bare(), err)
	}
	return list, nil
}

// SubscriptionsOf reads by the subscriber index, joined to the service's
// nodes.
func (s pubSub) SubscriptionsOf(ctx context.Context, service, who jid.JID) ([]storage.PubSubSubscription, error) {
	domain, local := ownerKey(service)
	list, err := querySubscriptions(ctx, s.db.sql, `
		SELECT n.name, s.subscriber_bare, s.subscriber_resource, s.subid, s.state
		FROM pubsub_subscriptions s JOIN pubsub_nodes n ON n.id = s.node_id
		WHERE s.subscriber_bare = $1 AND n.domain = $2 AND n.local = $3
		ORDER BY n.name, s.subscriber_resource`,
		who.Bare().String(), domain, local)
	if err != nil {
		return nil, fmt.Errorf("storage: subscriptions of %s on %s: %w", who.Bare(), service.Bare(), err)
	}
	return list, nil
}

// querySubscriptions runs a query of node name, subscriber_bare,
// subscriber_resource, subid, state.
func querySubscriptions(ctx context.Context, q rowsQuerier, query string, args ...any) ([]storage.PubSubSubscription, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []storage.PubSubSubscription
	for rows.Next() {
		var (
			sub              storage.PubSubSubscription
			bare, res, state string
		)
		if err := rows.Scan(&sub.Node, &bare, &res, &sub.SubID, &state); err != nil {
			return nil, err
		}
		if sub.JID, err = parseWith(bare, res); err != nil {
			return nil, fmt.Errorf("subscriber: %w", err)
		}
		sub.State = storage.SubscriptionState(state)
		list = append(list, sub)
	}
	return list, rows.Err()
}
