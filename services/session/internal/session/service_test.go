package session_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"google.golang.org/grpc/codes"
)

// TestInvalidUTF8 covers input gRPC itself cannot carry (proto3 strings
// must be UTF-8), in case another transport hands it to the domain. Every
// case fails validation before a peer would be asked.
func TestInvalidUTF8(t *testing.T) {
	db := storagetest.OpenSQLite(t, sessiondb.Migrations())
	s := session.NewService(sessiondb.New(db), nil, nil, session.Config{})
	ctx := context.Background()
	bad := "x\xc3"
	yes := true
	valid := func() session.NewClinician {
		return session.NewClinician{ID: "c", LoginActive: &yes, Products: []string{"send"}}
	}
	check := func(name string, err error, field string) {
		t.Helper()
		if apperr.CodeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming %s", name, err, field)
		}
	}
	in := valid()
	in.ID = bad
	check("clinician_id", s.Create(ctx, in), "clinician_id")
	in = valid()
	in.Products = []string{"ok", bad}
	check("products", s.Create(ctx, in), "products")
	in = valid()
	in.Groups = []string{bad}
	check("groups", s.Create(ctx, in), "groups")
	in = valid()
	in.SendEntryIdentifier = &bad
	check("identifier", s.Create(ctx, in), "send_entry_identifier")
	check("patch groups", s.Update(ctx, "c", &session.ClinicianPatch{Products: []string{}, Groups: []string{bad}}), "groups")
	check("patch id", s.Update(ctx, bad, &session.ClinicianPatch{Products: []string{}, Groups: []string{}}), "clinician_id")
	_, err := s.ClinicianJWT(ctx, bad)
	check("jwt identifier", err, "send_entry_identifier")
	if _, err := sessiondb.New(db).Get(ctx, "c"); err == nil {
		t.Fatal("an invalid clinician was stored")
	}
}
