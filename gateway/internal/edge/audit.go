package edge

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	"google.golang.org/grpc/metadata"
)

// Audit query limits of the edge (each service applies the same).
const (
	DefaultAuditPageSize = 50
	MaxAuditPageSize     = 500
)

// AuditEventsPath is the audit query endpoint.
const AuditEventsPath = "/dhos/v1/audit/events"

// auditSource is one service's audit query API.
type auditSource struct {
	name   string
	client auditv1.AuditServiceClient
}

// auditQuery serves GET /dhos/v1/audit/events: it asks the four services
// (each over its own outbox, each checking the caller's read:audit scope)
// and merges their pages by time. The page token it returns holds each
// service's own cursor, so a page continues every service where the
// previous one stopped.
type auditQuery struct {
	sources []auditSource
	errs    *errorWriter
}

// auditEventJSON is one event of the response.
type auditEventJSON struct {
	ID          string         `json:"id"`
	Time        string         `json:"time"`
	EventType   string         `json:"event_type"`
	Actor       string         `json:"actor"`
	Subject     string         `json:"subject"`
	Outcome     string         `json:"outcome"`
	Reason      string         `json:"reason"`
	TraceID     string         `json:"trace_id"`
	Service     string         `json:"service"`
	EventData   map[string]any `json:"event_data"`
	PublishedAt string         `json:"published_at"`
}

// auditPageJSON is the response body.
type auditPageJSON struct {
	Events        []auditEventJSON `json:"events"`
	NextPageToken string           `json:"next_page_token"`
}

const auditTokenPrefix = "e1."

// encodeAuditToken packs the services' cursors.
func encodeAuditToken(cursors map[string]string) string {
	b, _ := json.Marshal(cursors)
	return auditTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// decodeAuditToken unpacks the services' cursors; ok is false when the
// token was not made by encodeAuditToken for these services.
func (a *auditQuery) decodeAuditToken(s string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(s, auditTokenPrefix)
	if !ok {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, false
	}
	var m map[string]string
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	for k := range m {
		if !slices.ContainsFunc(a.sources, func(s auditSource) bool { return s.name == k }) {
			return nil, false
		}
	}
	return m, true
}

func (a *auditQuery) list(w http.ResponseWriter, r *http.Request) {
	authz := r.Header.Get("Authorization")
	if scheme, tok, _ := strings.Cut(strings.TrimSpace(authz), " "); !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dhos"`)
		a.errs.write(w, http.StatusUnauthorized, "a bearer token is required")
		return
	}
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "principal", "type", "from", "to", "page_token", "page_size":
		default:
			a.errs.write(w, http.StatusBadRequest, "unknown query parameter "+k)
			return
		}
	}
	size := DefaultAuditPageSize
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			a.errs.write(w, http.StatusBadRequest, "page_size must be a whole number")
			return
		}
		if n > 0 {
			size = min(n, MaxAuditPageSize)
		}
	}
	cursors := map[string]string{}
	if tok := q.Get("page_token"); tok != "" {
		var ok bool
		if cursors, ok = a.decodeAuditToken(tok); !ok {
			a.errs.write(w, http.StatusBadRequest, "page_token is not valid")
			return
		}
	}
	ctx := metadata.NewOutgoingContext(r.Context(), metadata.Pairs("authorization", authz))
	pages := make([]*auditv1.ListEventsResponse, len(a.sources))
	errs := make([]error, len(a.sources))
	var wg sync.WaitGroup
	for i, src := range a.sources {
		wg.Go(func() {
			pages[i], errs[i] = src.client.ListEvents(ctx, &auditv1.ListEventsRequest{
				Principal: q.Get("principal"), Type: q.Get("type"), From: q.Get("from"), To: q.Get("to"),
				PageSize: int32(size), PageToken: cursors[src.name],
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			a.errs.writeError(ctx, w, r, err)
			return
		}
	}
	page := mergeAudit(a.sources, pages, cursors, size)
	body, err := json.Marshal(page)
	if err != nil {
		a.errs.writeError(ctx, w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// mergeAudit takes the size oldest events of the services' pages (each
// already in its service's order) and the token that continues after
// them.
func mergeAudit(sources []auditSource, pages []*auditv1.ListEventsResponse, cursors map[string]string, size int) auditPageJSON {
	type item struct {
		src int
		idx int
		ev  *auditv1.AuditEvent
	}
	var all []item
	for i, p := range pages {
		for j, ev := range p.GetEvents() {
			all = append(all, item{i, j, ev})
		}
	}
	// Times are fixed-width ISO 8601 strings: they sort as text. Ties keep
	// each service's own order.
	sort.SliceStable(all, func(x, y int) bool {
		a, b := all[x], all[y]
		if a.ev.GetTime() != b.ev.GetTime() {
			return a.ev.GetTime() < b.ev.GetTime()
		}
		if a.src != b.src {
			return sources[a.src].name < sources[b.src].name
		}
		return a.idx < b.idx
	})
	taken := all[:min(size, len(all))]
	out := auditPageJSON{Events: make([]auditEventJSON, 0, len(taken))}
	next := map[string]string{}
	for k, v := range cursors {
		next[k] = v
	}
	consumed := make([]int, len(pages))
	for _, it := range taken {
		ev := it.ev
		out.Events = append(out.Events, auditEventJSON{
			ID: ev.GetId(), Time: ev.GetTime(), EventType: ev.GetEventType(), Actor: ev.GetActor(), Subject: ev.GetSubject(),
			Outcome: ev.GetOutcome(), Reason: ev.GetReason(), TraceID: ev.GetTraceId(), Service: ev.GetService(),
			EventData: ev.GetEventData().AsMap(), PublishedAt: ev.GetPublishedAt(),
		})
		next[sources[it.src].name] = ev.GetCursor()
		consumed[it.src]++
	}
	more := false
	for i, p := range pages {
		if consumed[i] < len(p.GetEvents()) || p.GetNextPageToken() != "" {
			more = true
		}
	}
	if more {
		out.NextPageToken = encodeAuditToken(next)
	}
	return out
}
