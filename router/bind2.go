package router

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
)

// BindFeature enables a feature for a session that a client binds with
// Bind 2 (XEP-0386), which carries requests for the session's features
// inline: e is the element of the feature's namespace the client put in
// its <bind/> (carbons' <enable/>). It returns the element that answers it
// in <bound/>, or nil when the feature answers nothing. It runs while the
// session is bound and not yet attached to its connection, before the
// client has sent anything on it: as if the client had asked first thing.
type BindFeature func(ctx context.Context, s Session, e *Element) *Element

// bindFeatures holds the modules' Bind 2 features by namespace.
type bindFeatures struct {
	m atomic.Pointer[map[string]entry[BindFeature]]
}

// AddBindFeature makes h the Bind 2 feature of namespace ns, advertised in
// the <inline/> list of the Bind 2 stream feature as long as the
// registration lasts. One handler per namespace.
func (r *Router) AddBindFeature(owner, ns string, h BindFeature) (Registration, error) {
	reg, holder, taken := registerUnique(&r.hooks, &r.bindFeatures.m, ns, owner, h)
	if taken {
		return nil, fmt.Errorf("router: bind 2 feature %s already registered by %s", ns, holder)
	}
	return reg, nil
}

// BindFeatures lists the namespaces of the registered Bind 2 features,
// sorted, for the stream feature.
func (r *Router) BindFeatures() []string {
	p := r.bindFeatures.m.Load()
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(*p))
	for ns := range *p {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}

// EnableBindFeature runs the Bind 2 feature of e's namespace for s and
// returns its answer; ok is false when no feature has that namespace. A
// panic in the handler is logged with its owner and gives no answer.
func (r *Router) EnableBindFeature(ctx context.Context, s Session, e *Element) (answer *Element, ok bool) {
	p := r.bindFeatures.m.Load()
	if p == nil {
		return nil, false
	}
	f, ok := (*p)[e.Name.Space]
	if !ok {
		return nil, false
	}
	r.guardSession(f.owner, func() { answer = f.h(ctx, s, e) })
	return answer, true
}
