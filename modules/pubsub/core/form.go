package core

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Form types of XEP-0060 (§16.4.3, §16.4.4, §7.1.5).
const (
	FormNodeConfig     = NS + "#node_config"
	FormPublishOptions = NS + "#publish-options"
	nsData             = "jabber:x:data"
)

// Field names of the pubsub#node_config form that NodeConfig holds.
const (
	FieldAccessModel   = "pubsub#access_model"
	FieldPublishModel  = "pubsub#publish_model"
	FieldMaxItems      = "pubsub#max_items"
	FieldPersistItems  = "pubsub#persist_items"
	FieldSendLast      = "pubsub#send_last_published_item"
	FieldNotifyRetract = "pubsub#notify_retract"
	FieldNotifyDelete  = "pubsub#notify_delete"
	FieldNotifyConfig  = "pubsub#notify_config"
	FieldNotifySub     = "pubsub#notify_sub"
	FieldDeliverNotif  = "pubsub#deliver_notifications"
	FieldDeliverPay    = "pubsub#deliver_payloads"
	FieldPresenceBased = "pubsub#presence_based_delivery"
	FieldTitle         = "pubsub#title"
	FieldType          = "pubsub#type"
	FieldRosterGroups  = "pubsub#roster_groups_allowed"
	FieldItemExpire    = "pubsub#item_expire"
)

// Form is a submitted data form: its values by field name, FORM_TYPE
// apart.
type Form struct {
	Type   string
	Fields map[string][]string
	// Order is the field names in the order given, so that errors name
	// the first bad field.
	Order []string
}

// ParseForm reads a jabber:x:data form (XEP-0004), or returns false if x
// is not one.
func ParseForm(x *router.Element) (Form, bool) {
	if x == nil || x.Name.Space != nsData || x.Name.Local != "x" {
		return Form{}, false
	}
	f := Form{Fields: map[string][]string{}}
	for _, fe := range x.Elements() {
		if fe.Name.Local != "field" {
			continue
		}
		name := fe.Get("var")
		var vals []string
		for _, v := range fe.Elements() {
			if v.Name.Local == "value" {
				vals = append(vals, v.Text())
			}
		}
		if name == "FORM_TYPE" {
			if len(vals) > 0 {
				f.Type = vals[0]
			}
			continue
		}
		if name == "" {
			continue
		}
		if _, dup := f.Fields[name]; !dup {
			f.Order = append(f.Order, name)
		}
		f.Fields[name] = vals
	}
	return f, true
}

// Apply sets the fields of f on cfg. limit is the server's item limit,
// which pubsub#max_items may not exceed ("max" means it); an unknown field,
// a value not of the field's type or not allowed is an *Error naming it.
func (f Form) Apply(cfg *storage.NodeConfig, limit int) *Error {
	for _, name := range f.Order {
		vals := f.Fields[name]
		one := ""
		if len(vals) > 0 {
			one = vals[0]
		}
		var err error
		switch name {
		case FieldAccessModel:
			m := storage.AccessModel(one)
			switch m {
			case storage.AccessOpen, storage.AccessPresence, storage.AccessRoster, storage.AccessWhitelist, storage.AccessAuthorize:
				// Service.configFrom refuses authorize where the
				// service does not offer it.
				cfg.AccessModel = m
			default:
				err = fmt.Errorf("unknown access model")
			}
		case FieldPublishModel:
			m := storage.PublishModel(one)
			switch m {
			case storage.PublishPublishers, storage.PublishSubscribers, storage.PublishOpen:
				cfg.PublishModel = m
			default:
				err = fmt.Errorf("unknown publish model")
			}
		case FieldMaxItems:
			if one == "max" {
				cfg.MaxItems = storage.MaxItemsMax
				break
			}
			n, e := strconv.Atoi(one)
			switch {
			case e != nil || n < 1:
				err = fmt.Errorf("not a positive number nor max")
			case n > limit:
				err = fmt.Errorf("above the server's limit of %d", limit)
			default:
				cfg.MaxItems = n
			}
		case FieldSendLast:
			m := storage.SendLastPublished(one)
			switch m {
			case storage.SendLastNever, storage.SendLastOnSub, storage.SendLastOnSubAndPresence:
				cfg.SendLast = m
			default:
				err = fmt.Errorf("unknown value")
			}
		case FieldTitle:
			cfg.Title = one
		case FieldType:
			cfg.Type = one
		case FieldRosterGroups:
			cfg.RosterGroupsAllowed = slices.Compact(slices.Sorted(slices.Values(vals)))
		case FieldItemExpire:
			n, e := strconv.Atoi(one)
			if one == "" {
				n, e = 0, nil
			}
			switch {
			case e != nil || n < 0:
				err = fmt.Errorf("not a number of seconds")
			case n > 0:
				// Nothing expires items yet: refused rather than ignored.
				err = fmt.Errorf("item expiry is not supported")
			default:
				cfg.ItemExpire = time.Duration(n) * time.Second
			}
		default:
			p := boolField(cfg, name)
			if p == nil {
				return notAcceptable("unknown field " + name)
			}
			b, ok := parseBool(one)
			if !ok {
				err = fmt.Errorf("not a boolean")
			}
			*p = b
		}
		if err != nil {
			return notAcceptable(name + ": " + err.Error())
		}
	}
	return nil
}

// boolField returns the boolean field of cfg named name, or nil.
func boolField(cfg *storage.NodeConfig, name string) *bool {
	switch name {
	case FieldPersistItems:
		return &cfg.PersistItems
	case FieldNotifyRetract:
		return &cfg.NotifyRetract
	case FieldNotifyDelete:
		return &cfg.NotifyDelete
	case FieldNotifyConfig:
		return &cfg.NotifyConfig
	case FieldNotifySub:
		return &cfg.NotifySub
	case FieldDeliverNotif:
		return &cfg.DeliverNotifications
	case FieldDeliverPay:
		return &cfg.DeliverPayloads
	case FieldPresenceBased:
		return &cfg.PresenceBasedDelivery
	}
	return nil
}

// parseBool reads an XEP-0004 boolean.
func parseBool(s string) (bool, bool) {
	switch s {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ConfigForm renders cfg as the pubsub#node_config form (XEP-0060
// §16.4.4) of type typ ("form" to fill in, "submit" to send), with every
// field NodeConfig has and its XEP-0004 type.
func ConfigForm(cfg storage.NodeConfig, typ string) *router.Element {
	x := router.NewElement(nsData, "x", "type", typ)
	x.Append(field("FORM_TYPE", "hidden", "", FormNodeConfig))
	accessOpts := []string{string(storage.AccessOpen), string(storage.AccessPresence), string(storage.AccessRoster), string(storage.AccessWhitelist)}
	x.Append(withOptions(field(FieldAccessModel, "list-single", "Who may subscribe and retrieve items", string(cfg.AccessModel)), accessOpts))
	x.Append(withOptions(field(FieldPublishModel, "list-single", "Who may publish", string(cfg.PublishModel)),
		[]string{string(storage.PublishPublishers), string(storage.PublishSubscribers), string(storage.PublishOpen)}))
	maxItems := strconv.Itoa(cfg.MaxItems)
	if cfg.MaxItems == storage.MaxItemsMax {
		maxItems = "max"
	}
	x.Append(field(FieldMaxItems, "text-single", "Max number of items to persist", maxItems))
	x.Append(field(FieldPersistItems, "boolean", "Persist items to storage", boolValue(cfg.PersistItems)))
	x.Append(withOptions(field(FieldSendLast, "list-single", "When to send the last published item", string(cfg.SendLast)),
		[]string{string(storage.SendLastNever), string(storage.SendLastOnSub), string(storage.SendLastOnSubAndPresence)}))
	x.Append(field(FieldNotifyRetract, "boolean", "Notify subscribers when items are removed", boolValue(cfg.NotifyRetract)))
	x.Append(field(FieldNotifyDelete, "boolean", "Notify subscribers when the node is deleted", boolValue(cfg.NotifyDelete)))
	x.Append(field(FieldNotifyConfig, "boolean", "Notify subscribers when the configuration changes", boolValue(cfg.NotifyConfig)))
	x.Append(field(FieldNotifySub, "boolean", "Notify owners about new subscribers and unsubscribes", boolValue(cfg.NotifySub)))
	x.Append(field(FieldDeliverNotif, "boolean", "Deliver event notifications", boolValue(cfg.DeliverNotifications)))
	x.Append(field(FieldDeliverPay, "boolean", "Deliver payloads with event notifications", boolValue(cfg.DeliverPayloads)))
	x.Append(field(FieldPresenceBased, "boolean", "Deliver notifications only to available users", boolValue(cfg.PresenceBasedDelivery)))
	x.Append(field(FieldTitle, "text-single", "A friendly name for the node", cfg.Title))
	x.Append(field(FieldType, "text-single", "The type of node data, usually specified by the namespace of the payload", cfg.Type))
	groups := field(FieldRosterGroups, "list-multi", "Roster groups allowed to subscribe")
	for _, g := range cfg.RosterGroupsAllowed {
		groups.Append(router.NewElement(nsData, "value").AppendText(g))
	}
	x.Append(groups)
	x.Append(field(FieldItemExpire, "text-single", "Number of seconds after which to automatically purge items", strconv.Itoa(int(cfg.ItemExpire/time.Second))))
	return x
}

// field is a form field with its values; no value is added for "".
func field(name, typ, label string, values ...string) *router.Element {
	f := router.NewElement(nsData, "field", "var", name, "type", typ)
	if label != "" {
		f.SetAttr("label", label)
	}
	for _, v := range values {
		if v != "" || typ == "text-single" {
			f.Append(router.NewElement(nsData, "value").AppendText(v))
		}
	}
	return f
}

func withOptions(f *router.Element, opts []string) *router.Element {
	for _, o := range opts {
		f.Append(router.NewElement(nsData, "option").Append(router.NewElement(nsData, "value").AppendText(o)))
	}
	return f
}
