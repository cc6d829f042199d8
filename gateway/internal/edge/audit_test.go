package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeAudit serves a fixed list of events in order; a cursor is the index
// after which to continue.
type fakeAudit struct {
	events []*auditv1.AuditEvent
	err    error
	auth   []string
}

func (f *fakeAudit) ListEvents(ctx context.Context, in *auditv1.ListEventsRequest, _ ...grpc.CallOption) (*auditv1.ListEventsResponse, error) {
	md, _ := metadata.FromOutgoingContext(ctx)
	f.auth = md.Get("authorization")
	if f.err != nil {
		return nil, f.err
	}
	start := 0
	if in.GetPageToken() != "" {
		n, err := strconv.Atoi(in.GetPageToken())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "page_token is not valid")
		}
		start = n
	}
	end := min(start+int(in.GetPageSize()), len(f.events))
	resp := &auditv1.ListEventsResponse{Events: f.events[start:end]}
	if end < len(f.events) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// newFakeSources makes four services whose events interleave in time.
func newFakeSources(perService int) ([]auditSource, []*fakeAudit, int) {
	base := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	var srcs []auditSource
	var fakes []*fakeAudit
	total := 0
	for s, name := range []string{"activation", "device", "session", "token"} {
		f := &fakeAudit{}
		for i := range perService + s { // different lengths
			f.events = append(f.events, &auditv1.AuditEvent{
				Id:        fmt.Sprintf("%s-%d", name, i),
				Time:      apitime.Format(base.Add(time.Duration(i*7+s*3) * time.Millisecond)),
				EventType: "t",
				Service:   name,
				Cursor:    strconv.Itoa(i + 1),
			})
			total++
		}
		fakes = append(fakes, f)
		srcs = append(srcs, auditSource{name, f})
	}
	return srcs, fakes, total
}

func getAudit(t *testing.T, a *auditQuery, query, authz string) (int, auditPageJSON) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, AuditEventsPath+"?"+query, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	a.list(rec, req)
	var page auditPageJSON
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatalf("body %s: %v", rec.Body, err)
		}
	}
	return rec.Code, page
}

// TestAuditPagesMergeByTime pages through four services with a small
// page: every event once, in time order.
func TestAuditPagesMergeByTime(t *testing.T) {
	srcs, fakes, total := newFakeSources(10)
	a := &auditQuery{sources: srcs, errs: &errorWriter{log: slog.New(slog.DiscardHandler)}}
	var got []auditEventJSON
	tok := ""
	for range 100 {
		code, page := getAudit(t, a, "page_size=3&page_token="+tok, "Bearer x")
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if len(page.Events) > 3 {
			t.Fatalf("page of %d", len(page.Events))
		}
		got = append(got, page.Events...)
		if tok = page.NextPageToken; tok == "" {
			break
		}
	}
	if len(got) != total {
		t.Fatalf("%d events, want %d", len(got), total)
	}
	seen := map[string]bool{}
	for i, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.Time < got[i-1].Time {
			t.Fatalf("out of order at %d: %s after %s", i, e.Time, got[i-1].Time)
		}
	}
	if fakes[0].auth[0] != "Bearer x" {
		t.Fatalf("authorization forwarded as %v", fakes[0].auth)
	}
}

func TestAuditQueryErrors(t *testing.T) {
	srcs, fakes, _ := newFakeSources(2)
	a := &auditQuery{sources: srcs, errs: &errorWriter{log: slog.New(slog.DiscardHandler)}}
	for _, tc := range []struct {
		query, authz string
		want         int
	}{
		{"", "", http.StatusUnauthorized},
		{"", "Basic x", http.StatusUnauthorized},
		{"page_size=x", "Bearer x", http.StatusBadRequest},
		{"page_size=-1", "Bearer x", http.StatusBadRequest},
		{"page_token=nope", "Bearer x", http.StatusBadRequest},
		{"page_token=" + encodeAuditToken(map[string]string{"elsewhere": "1"}), "Bearer x", http.StatusBadRequest},
		{"colour=red", "Bearer x", http.StatusBadRequest},
		{"page_size=1000", "Bearer x", http.StatusOK},
	} {
		if code, _ := getAudit(t, a, tc.query, tc.authz); code != tc.want {
			t.Errorf("%q %q: status %d, want %d", tc.query, tc.authz, code, tc.want)
		}
	}
	fakes[2].err = status.Error(codes.PermissionDenied, "token lacks the scope read:audit")
	if code, _ := getAudit(t, a, "", "Bearer x"); code != http.StatusForbidden {
		t.Errorf("a service's refusal: status %d, want 403", code)
	}
}
