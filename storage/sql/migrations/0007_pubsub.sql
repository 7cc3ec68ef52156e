-- PubSub (XEP-0060) and PEP (XEP-0163), storage/pubsub.go. A service is
-- named by a bare JID (domain, local): an account's for PEP (local is the
-- account's), a domain's for a generic service (local is ''). Nodes do not
-- hang on users, because generic services have no account; Users.Delete
-- deletes an account's in its transaction. Everything else hangs on its
-- node by the node's id, so that deleting a node deletes the rest.

-- One row per node, with its configuration as columns: typed, readable by
-- an operator in SQL, and a field added later gets its default for the
-- existing nodes from its migration. Enumerated values are checked by the
-- store, not with CHECK, which SQLite cannot change without copying the
-- table. max_items is -1 for "max"; item_expire is in seconds, 0 for none.
CREATE TABLE pubsub_nodes (
    id                       {{ID}},
    domain                   {{TEXT}} NOT NULL,
    local                    {{TEXT}} NOT NULL,
    name                     {{TEXT}} NOT NULL,
    creator                  {{TEXT}} NOT NULL,
    created_at               BIGINT NOT NULL,
    access_model             {{TEXT}} NOT NULL,
    publish_model            {{TEXT}} NOT NULL,
    max_items                BIGINT NOT NULL,
    persist_items            BOOLEAN NOT NULL,
    send_last_published_item {{TEXT}} NOT NULL,
    notify_retract           BOOLEAN NOT NULL,
    notify_delete            BOOLEAN NOT NULL,
    notify_config            BOOLEAN NOT NULL,
    notify_sub               BOOLEAN NOT NULL,
    deliver_notifications    BOOLEAN NOT NULL,
    deliver_payloads         BOOLEAN NOT NULL,
    presence_based_delivery  BOOLEAN NOT NULL,
    title                    {{TEXT}} NOT NULL,
    payload_type             {{TEXT}} NOT NULL,
    item_expire              BIGINT NOT NULL
);

-- Finding a node by name, listing and counting a service's nodes, and
-- deleting them.
CREATE UNIQUE INDEX pubsub_nodes_name ON pubsub_nodes (domain, local, name);
-- The few nodes whose items expire (ExpireItems), without a scan of all.
CREATE INDEX pubsub_nodes_expire ON pubsub_nodes (id) WHERE item_expire > 0;

-- pubsub#roster_groups_allowed, a list.
CREATE TABLE pubsub_node_groups (
    node_id BIGINT NOT NULL REFERENCES pubsub_nodes (id) ON DELETE CASCADE,
    grp     {{TEXT}} NOT NULL,
    PRIMARY KEY (node_id, grp)
);

-- One row per item. seq numbers the rows in publication order, which a
-- replaced item moves to the end of, being deleted and inserted again; id
-- is the item's id the clients see. published is Unix microseconds, UTC.
CREATE TABLE pubsub_items (
    seq       {{ID}},
    node_id   BIGINT NOT NULL REFERENCES pubsub_nodes (id) ON DELETE CASCADE,
    id        {{TEXT}} NOT NULL,
    publisher {{TEXT}} NOT NULL,
    published BIGINT NOT NULL,
    payload   {{BLOB}} NOT NULL
);

-- The items of a node in publication order: the newest N, the last one,
-- trimming the oldest, and the cascade from the node.
CREATE INDEX pubsub_items_order ON pubsub_items (node_id, seq);
-- Looking up, replacing and retracting an item by id.
CREATE UNIQUE INDEX pubsub_items_id ON pubsub_items (node_id, id);

-- Affiliations of bare JIDs with nodes; no row is "none".
CREATE TABLE pubsub_affiliations (
    node_id     BIGINT NOT NULL REFERENCES pubsub_nodes (id) ON DELETE CASCADE,
    jid         {{TEXT}} NOT NULL,
    affiliation {{TEXT}} NOT NULL,
    PRIMARY KEY (node_id, jid)
);

-- A JID's affiliations (AffiliationsOf, and Users.Delete).
CREATE INDEX pubsub_affiliations_jid ON pubsub_affiliations (jid, node_id);

-- Subscriptions, one per node and subscribed JID, split into its bare JID
-- and resource ('' for a bare JID) so that a bare JID finds the
-- subscriptions of all its resources through an index.
CREATE TABLE pubsub_subscriptions (
    node_id             BIGINT NOT NULL REFERENCES pubsub_nodes (id) ON DELETE CASCADE,
    subscriber_bare     {{TEXT}} NOT NULL,
    subscriber_resource {{TEXT}} NOT NULL,
    subid               {{TEXT}} NOT NULL,
    state               {{TEXT}} NOT NULL,
    PRIMARY KEY (node_id, subscriber_bare, subscriber_resource)
);

-- A subscriber's subscriptions (SubscriptionsOf, and Users.Delete).
CREATE INDEX pubsub_subscriptions_subscriber ON pubsub_subscriptions (subscriber_bare, node_id);
