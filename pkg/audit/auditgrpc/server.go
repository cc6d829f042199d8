package auditgrpc

import (
	"context"
	"time"

	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/validate"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// ServiceName is the full name of the audit service (for health checks).
var ServiceName = auditv1.AuditService_ServiceDesc.ServiceName

// Descriptor is the audit service's descriptor: pass it to auth.RulesOf
// with the service's own so that the guard knows ListEvents' rule.
func Descriptor() protoreflect.ServiceDescriptor {
	return auditv1.File_dhos_audit_v1_audit_proto.Services().Get(0)
}

// Server implements auditv1.AuditServiceServer over one outbox.
type Server struct {
	auditv1.UnimplementedAuditServiceServer
	db storage.Querier
}

// New returns a Server reading the outbox in db.
func New(db storage.Querier) *Server { return &Server{db: db} }

// Register adds the server to g.
func (s *Server) Register(g *grpc.Server) { auditv1.RegisterAuditServiceServer(g, s) }

// MaxFilterLength bounds principal and type, in bytes.
const MaxFilterLength = 200

// ListEvents implements auditv1.AuditServiceServer.
func (s *Server) ListEvents(ctx context.Context, req *auditv1.ListEventsRequest) (*auditv1.ListEventsResponse, error) {
	q, err := QueryOf(req)
	if err != nil {
		return nil, err
	}
	page, err := audit.List(ctx, s.db, q)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListEventsResponse{NextPageToken: page.NextPageToken, Events: make([]*auditv1.AuditEvent, 0, len(page.Events))}
	for _, e := range page.Events {
		pe, err := ToProto(e)
		if err != nil {
			return nil, apperr.Internal(err)
		}
		out.Events = append(out.Events, pe)
	}
	return out, nil
}

// QueryOf checks a request and turns it into an outbox query.
func QueryOf(req *auditv1.ListEventsRequest) (audit.Query, error) {
	q := audit.Query{Principal: req.GetPrincipal(), Type: req.GetType(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	if err := validate.String("principal", q.Principal, MaxFilterLength); err != nil {
		return q, err
	}
	if err := validate.String("type", q.Type, MaxFilterLength); err != nil {
		return q, err
	}
	if err := validate.String("page_token", q.PageToken, MaxFilterLength); err != nil {
		return q, err
	}
	var err error
	if q.From, err = ParseTime("from", req.GetFrom()); err != nil {
		return q, err
	}
	if q.To, err = ParseTime("to", req.GetTo()); err != nil {
		return q, err
	}
	if q.PageSize < 0 {
		return q, apperr.InvalidArgument("page_size must not be negative")
	}
	return q, nil
}

// ParseTime reads an RFC 3339 timestamp; "" is the zero time.
func ParseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.InvalidArgument("%s must be an ISO 8601 timestamp such as 2026-03-26T00:00:00.000Z", field)
	}
	return t.UTC(), nil
}

// ToProto converts a stored event.
func ToProto(e audit.Stored) (*auditv1.AuditEvent, error) {
	data, err := structpb.NewStruct(e.Data)
	if err != nil {
		return nil, err
	}
	pe := &auditv1.AuditEvent{
		Id:        e.ID,
		Time:      apitime.Format(e.Time),
		EventType: e.Type,
		Actor:     e.Actor,
		Subject:   e.Subject,
		Outcome:   string(e.Outcome),
		Reason:    e.Reason,
		TraceId:   e.TraceID,
		Service:   e.Service,
		EventData: data,
		Cursor:    e.Cursor,
	}
	if e.PublishedAt != nil {
		pe.PublishedAt = apitime.Format(*e.PublishedAt)
	}
	return pe, nil
}
