package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// fuzzHandler is the whole edge handler with every service at an address
// where nothing listens: what passes the edge's decoding is answered 503
// at once, so the fuzzer spends its time in the decoding.
func fuzzHandler(f *testing.F) http.Handler {
	dead := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.Fatal(err)
		}
		a := l.Addr().String()
		l.Close()
		return a
	}
	conns, err := Dial(service.Addresses{Activation: dead(), Device: dead(), Token: dead(), Session: dead()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = conns.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	h, err := Handler(ctx, Options{Conns: conns, Environment: config.Development, AllowDropData: true})
	if err != nil {
		f.Fatal(err)
	}
	return h
}

var fuzzMethods = []string{"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"}

// FuzzEdgeRequest sends the edge arbitrary requests: any method, path,
// query, body, Content-Type and authorisation headers. Whatever comes in,
// the edge must not panic or answer 500 (only 503, as no service is
// there), and every error is the contract's JSON body with the status as
// its code.
func FuzzEdgeRequest(f *testing.F) {
	h := fuzzHandler(f)
	seeds := []struct {
		m                    byte
		target, ct, authz, x string
		body                 []byte
	}{
		{1, "/dhos/v1/activation/ABC?type=gdm", "application/json", "", "", []byte(`{"otp":"abcd"}`)},
		{1, "/dhos/v1/activation/123456789?type=send_entry", "", "", "", nil},
		{0, "/dhos/v1/patient/p1/jwt", "", "", "code", nil},
		{0, "/dhos/v1/device?active=true&location_id=L1,L2", "", "Bearer x.y.z", "", nil},
		{2, "/dhos/v1/device/d1", "application/json", "Bearer t", "", []byte(`{"active":false,"uuid":"x"}`)},
		{1, "/dhos/v1/device?type=send_entry", "application/x-www-form-urlencoded", "Bearer t", "", []byte(`location_id=x`)},
		{1, "/dhos/v1/clinician", "application/json", "Bearer t", "", []byte(`{"clinician_id":"c","login_active":true,"products":[{"product_name":"SEND","opened_date":"2020-01-01"}],"groups":["a"],"contract_expiry_eod_date":"2030-13-01"}`)},
		{2, "/dhos/v1/clinician/c1", "application/json", "Bearer t", "", []byte(`{"products":[],"groups":null,"login_active":"yes"}`)},
		{0, "/dhos/v1/clinician/jwt?send_entry_identifier=%ff", "", "Bearer t", "", nil},
		{1, "/drop_data", "", "Bearer t", "", nil},
		{0, "/dhos/v1/audit/events?page_size=99999&since=yesterday", "", "Bearer t", "", nil},
		{0, "/.well-known/jwks.json", "", "", "", nil},
		{1, "/dhos/v1/patient/p%2F1/activation", "application/json; charset=utf-8", "Bearer t", "", []byte(`[]`)},
		{1, "/dhos/v1/activation/x", "multipart/form-data; boundary=x", "", "", []byte("--x\r\n")},
		{1, "/dhos/v1/activation/x", "application/json", "", "", []byte(`{"otp":"\ud800"}`)},
		{1, "/dhos/v1/activation/x", "application/json", "", "", []byte(`{"otp":1e999}`)},
	}
	for _, s := range seeds {
		f.Add(s.m, s.target, s.ct, s.authz, s.x, s.body)
	}
	f.Fuzz(func(t *testing.T, m byte, target, ct, authz, xcode string, body []byte) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return // net/http answers 400 before the edge sees it
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Method, req.URL, req.RequestURI = method, u, target
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		for k, v := range map[string]string{"Content-Type": ct, "Authorization": authz, "X-Authorisation-Code": xcode} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q (%q): %d %s", method, target, body, w.Code, w.Body.Bytes())
		}
		if w.Code < 400 || method == http.MethodHead {
			return
		}
		var eb errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Code != w.Code || eb.Message == "" {
			t.Fatalf("%s %q: error body %q for %d", method, target, w.Body.Bytes(), w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %q: error Content-Type %q", method, target, ct)
		}
	})
}

// requestTypes are the request messages of every RPC the edge serves.
func requestTypes(f *testing.F) []protoreflect.MessageType {
	var out []protoreflect.MessageType
	for _, fd := range []protoreflect.FileDescriptor{
		activationv1.File_dhos_activation_v1_activation_proto,
		devicev1.File_dhos_device_v1_device_proto,
		sessionv1.File_dhos_session_v1_session_proto,
	} {
		for i := 0; i < fd.Services().Len(); i++ {
			ms := fd.Services().Get(i).Methods()
			for j := 0; j < ms.Len(); j++ {
				mt, err := protoregistry.GlobalTypes.FindMessageByName(ms.Get(j).Input().FullName())
				if err != nil {
					f.Fatal(err)
				}
				out = append(out, mt)
			}
		}
	}
	return out
}

// FuzzDecodeBody decodes arbitrary bodies into every request message the
// edge serves, as the gateway does. It must never panic; an error is io.EOF
// (no body) or a bodyError whose client-facing message is bounded.
func FuzzDecodeBody(f *testing.F) {
	types := requestTypes(f)
	for i, b := range []string{`{}`, `{"otp":"abcd"}`, `{"location_id":"L","description":"d","uuid":"u"}`,
		`{"products":[{"product_name":"SEND","opened_date":"2020-01-01"}],"groups":["x"],"login_active":true}`,
		`{"body":{"otp":1}}`, `[1,2]`, `  `, `{"a":`, `{"active":"true"}`, `{"contract_expiry_eod_date":null}`} {
		f.Add(uint8(i), []byte(b))
	}
	m := newJSONMarshaler()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		msg := types[int(which)%len(types)].New().Interface()
		err := m.NewDecoder(bytes.NewReader(body)).Decode(msg)
		if err == nil || errors.Is(err, io.EOF) {
			if err == nil {
				// What was decoded must encode again.
				if _, err := m.Marshal(msg); err != nil {
					t.Fatalf("decoded %T from %q does not encode: %v", msg, body, err)
				}
			}
			return
		}
		var be *bodyError
		if !errors.As(err, &be) {
			t.Fatalf("%T from %q: error %T %v is not a bodyError", msg, body, err, err)
		}
		if n := len(be.Error()); n > maxMessage+len("…") {
			t.Fatalf("message of %d bytes: %s", n, strconv.Quote(be.Error()))
		}
		_ = proto.Size(msg)
	})
}
