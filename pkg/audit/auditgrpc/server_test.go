package auditgrpc_test

import (
	"context"
	"testing"

	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"google.golang.org/grpc/codes"
)

func TestRule(t *testing.T) {
	rules, err := auth.RulesOf(auditgrpc.Descriptor())
	if err != nil {
		t.Fatal(err)
	}
	r := rules["/dhos.audit.v1.AuditService/ListEvents"]
	if r == nil || r.GetPublic() || len(r.GetScopes()) != 1 || r.GetScopes()[0] != "read:audit" {
		t.Fatalf("ListEvents rule %v, want scope read:audit", r)
	}
}

func TestListEvents(t *testing.T) {
	db := storagetest.OpenSQLite(t, storage.Migrations{Shared: []storage.NamedMigrations{audit.Migrations()}})
	ctx := context.Background()
	for _, s := range []string{"d1", "d2", "d1"} {
		if err := audit.RecordTx(ctx, db, audit.NewFailure(ctx, "activation", audit.TypeDeviceAuthFailed, s, "unknown device", audit.Data{"device_id": s})); err != nil {
			t.Fatal(err)
		}
	}
	srv := auditgrpc.New(db)
	resp, err := srv.ListEvents(ctx, &auditv1.ListEventsRequest{Principal: "d1", PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEvents()) != 1 || resp.GetNextPageToken() == "" {
		t.Fatalf("first page %v", resp)
	}
	e := resp.GetEvents()[0]
	if e.GetEventType() != "SEND entry device auth failed" || e.GetSubject() != "d1" || e.GetOutcome() != "failure" ||
		e.GetReason() != "unknown device" || e.GetService() != "activation" || e.GetActor() != audit.Anonymous ||
		e.GetEventData().AsMap()["device_id"] != "d1" || e.GetId() == "" || e.GetTime() == "" || e.GetPublishedAt() != "" || e.GetCursor() == "" {
		t.Fatalf("event %v", e)
	}
	resp, err = srv.ListEvents(ctx, &auditv1.ListEventsRequest{Principal: "d1", PageToken: resp.GetNextPageToken()})
	if err != nil || len(resp.GetEvents()) != 1 || resp.GetNextPageToken() != "" {
		t.Fatalf("second page %v, %v", resp, err)
	}
	resp, err = srv.ListEvents(ctx, &auditv1.ListEventsRequest{From: "2000-01-01T00:00:00Z", To: "2100-01-01T00:00:00.000Z"})
	if err != nil || len(resp.GetEvents()) != 3 {
		t.Fatalf("time range %v, %v", resp, err)
	}
	for _, bad := range []*auditv1.ListEventsRequest{
		{From: "yesterday"}, {To: "2026-13-01T00:00:00Z"}, {PageSize: -1}, {PageToken: "x"}, {Principal: "a\x00b"},
		{From: "2026-01-02T00:00:00Z", To: "2026-01-01T00:00:00Z"},
	} {
		if _, err := srv.ListEvents(ctx, bad); apperr.CodeOf(err) != codes.InvalidArgument {
			t.Errorf("%v: %v, want INVALID_ARGUMENT", bad, err)
		}
	}
}
