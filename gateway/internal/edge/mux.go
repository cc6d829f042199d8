package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// successStatus lists the responses whose success status is not 200, by
// the response message's full name. It is the only place such statuses
// are decided; the OpenAPI document declares each on its RPC
// (openapiv2_operation responses), and TestOpenAPISuccessMatchesTheEdge
// checks that the two agree.
var successStatus = map[protoreflect.FullName]int{
	"dhos.session.v1.CreateClinicianResponse": http.StatusCreated,
}

// newServeMux is the grpc-gateway mux with every option the contract
// depends on set explicitly.
func newServeMux(errs *errorWriter, trusted []netip.Prefix) *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMetadata(clientAddressMetadata(trusted)),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newJSONMarshaler()),
		runtime.WithErrorHandler(errs.grpcError),
		runtime.WithRoutingErrorHandler(errs.muxRoutingError),
		runtime.WithForwardResponseOption(forwardResponse),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		// Only the gateway's own metadata reaches response headers: none.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		// A POST is a POST: no form-encoded fallback to GET and no method
		// override header.
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithMiddlewares(recordRoute),
	)
}

// clientAddressMetadata passes the client's address to the services (for
// their per-address limits) under ratelimit.ClientAddressMetadata: the
// connection's peer, or, when the peer is a trusted proxy, the address it
// names in X-Forwarded-For. A client cannot set this key itself: the
// header matcher forwards no header under that name.
func clientAddressMetadata(trusted []netip.Prefix) func(context.Context, *http.Request) metadata.MD {
	return func(_ context.Context, r *http.Request) metadata.MD {
		if a := clientAddress(r, trusted); a.IsValid() {
			return metadata.Pairs(ratelimit.ClientAddressMetadata, a.String())
		}
		return nil
	}
}

// clientAddress is the address a request came from (see
// ratelimit.ForwardedClient).
func clientAddress(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ratelimit.ForwardedClient(ap.Addr(), r.Header.Values("X-Forwarded-For"), trusted)
}

// forwardedHeaders are the request headers passed to the services as
// gRPC metadata under the same (lower-case) name, besides Authorization,
// which grpc-gateway always forwards as "authorization".
var forwardedHeaders = map[string]bool{
	"x-authorisation-code": true,
	"traceparent":          true,
	"tracestate":           true,
}

// incomingHeader is the incoming header matcher: the headers above, plus
// grpc-gateway's defaults (permanent HTTP headers as grpcgateway-*).
func incomingHeader(key string) (string, bool) {
	// EqualFold, not ToLower and a lookup: no allocation for the headers
	// that are not forwarded, every request's most.
	for k := range forwardedHeaders {
		if strings.EqualFold(key, k) {
			return k, true
		}
	}
	return runtime.DefaultHeaderMatcher(key)
}

// forwardResponse sets the success status from successStatus, and drops
// the Content-Type of responses that have no body.
func forwardResponse(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if m == nil {
		return nil
	}
	desc := m.ProtoReflect().Descriptor()
	if isBodiless(desc) {
		// A nil value keeps net/http from sniffing one.
		w.Header()["Content-Type"] = nil
	}
	if st, ok := successStatus[desc.FullName()]; ok {
		w.WriteHeader(st)
	}
	return nil
}

// isBodiless reports whether a response message is written as an empty
// body: it has no fields at all.
func isBodiless(d protoreflect.MessageDescriptor) bool { return d.Fields().Len() == 0 }

// jsonMarshaler is runtime.JSONPb with the contract's options, compact
// output, empty bodies for field-less messages, and request decoding
// errors that say what was wrong.
type jsonMarshaler struct {
	runtime.JSONPb
}

func newJSONMarshaler() *jsonMarshaler {
	return &jsonMarshaler{runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{
			UseProtoNames:   true,
			EmitUnpopulated: true,
		},
		UnmarshalOptions: protojson.UnmarshalOptions{
			DiscardUnknown: false,
		},
	}}
}

// Marshal implements runtime.Marshaler.
func (m *jsonMarshaler) Marshal(v any) ([]byte, error) {
	if msg, ok := v.(proto.Message); ok && msg != nil && isBodiless(msg.ProtoReflect().Descriptor()) {
		return []byte{}, nil
	}
	b, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; send one stable form.
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// NewEncoder implements runtime.Marshaler (used for streams only).
func (m *jsonMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
}

// NewDecoder implements runtime.Marshaler. io.EOF (no body) passes
// through unchanged; every other error says what was wrong with the body.
// Bodies reach it already read, bounded and checked to be JSON by the
// middleware.
func (m *jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return &bodyError{err: err}
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			return io.EOF
		}
		if data[0] != '{' {
			return &bodyError{msg: "the request body must be a JSON object"}
		}
		if err := m.JSONPb.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
			return &bodyError{err: err}
		}
		return nil
	})
}

// bodyError is a request body the marshaller could not decode. The
// generated handlers turn it into INVALID_ARGUMENT with its text.
type bodyError struct {
	msg string
	err error
}

// protojsonPos matches protojson's "proto: [syntax error ](line L:C): "
// (protojson varies the space between a normal and a no-break one).
var protojsonPos = regexp.MustCompile(`^proto:[\s\x{a0}]*(syntax error[\s\x{a0}]*)?(\(line (\d+):(\d+)\):[\s\x{a0}]*)?`)

// protojsonField matches the JSON (lowerCamel) field name protojson
// reports; clients know the snake_case name.
var protojsonField = regexp.MustCompile(`field ([a-z][A-Za-z0-9]*)`)

func (e *bodyError) Error() string {
	return truncate(e.describe(), maxMessage)
}

// maxMessage bounds an error message that quotes the client's input.
const maxMessage = 300

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (e *bodyError) describe() string {
	if e.err == nil {
		return e.msg
	}
	msg := protojsonField.ReplaceAllStringFunc(e.err.Error(), snakeField)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(e.err, io.ErrUnexpectedEOF):
		return "request body is not valid JSON: it ends too early"
	case errors.As(e.err, &syn):
		return fmt.Sprintf("request body is not valid JSON: %s (at byte %d)", syn.Error(), syn.Offset)
	case errors.As(e.err, &typ):
		return fmt.Sprintf("request body has the wrong type: want %s, got JSON %s", typ.Type, typ.Value)
	}
	if m := protojsonPos.FindStringSubmatch(msg); m != nil {
		rest := msg[len(m[0]):]
		if m[3] != "" {
			rest += fmt.Sprintf(" (line %s, column %s)", m[3], m[4])
		}
		if m[1] != "" {
			// The middleware has checked the syntax: a "syntax error"
			// here is JSON of the wrong shape for the field.
			return "invalid request body: a value has the wrong type: " + rest
		}
		return "invalid request body: " + rest
	}
	return "invalid request body: " + msg
}

func (e *bodyError) Unwrap() error { return e.err }

// snakeField turns "field locationId" into "field location_id".
func snakeField(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
