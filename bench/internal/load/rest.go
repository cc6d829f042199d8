package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client calls the REST edge over keep-alive connections.
type Client struct {
	base string
	hc   *http.Client
	bufs sync.Pool
}

// NewClient returns a client of the edge at base with up to conns
// connections.
func NewClient(base string, conns int) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Client{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Close closes the idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// call sends a request and decodes a 200 (or want) JSON answer into out.
func (c *Client) call(ctx context.Context, step, method, path string, body []byte, want int, out any, hdr ...string) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = []string{hdr[i+1]}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	buf := c.bufs.Get().(*bytes.Buffer)
	defer c.bufs.Put(buf)
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: read body: %w", step, err)
	}
	if resp.StatusCode != want {
		return &StatusError{Step: step, Status: resp.StatusCode, Body: buf.String()}
	}
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			return fmt.Errorf("%s: decode %q: %w", step, buf.String(), err)
		}
	}
	return nil
}

// Get is a GET expecting 200 with a JSON answer decoded into out.
func (c *Client) Get(ctx context.Context, path string, out any, hdr ...string) error {
	return c.call(ctx, "GET "+path, http.MethodGet, path, nil, http.StatusOK, out, hdr...)
}

// Post is a POST expecting want.
func (c *Client) Post(ctx context.Context, path string, body any, want int, out any, hdr ...string) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.call(ctx, "POST "+path, http.MethodPost, path, b, want, out, hdr...)
}

// xff is the header a load balancer in front of the edge sets: the suite
// is started with the load generator's address as a trusted proxy
// (TRUSTED_PROXIES), so each flow comes from a client address of its own,
// as phones and tablets do, and the per-address limits count per client.
const xff = "X-Forwarded-For"

// ClientAddress is the client address of flow n: 10.0.0.0/8, one per
// flow.
func ClientAddress(n int64) string {
	return fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
}

// Names of the REST steps, as the results report them.
const (
	StepCreateActivation = "create activation"
	StepValidate         = "validate"
	StepGetJWT           = "get jwt"
	StepClinicianJWT     = "clinician jwt"
)

// FlowSteps are the steps of the patient and device flows.
var FlowSteps = []string{StepCreateActivation, StepValidate, StepGetJWT}

// PatientFlow is scenario (a): a new patient's activation is created by an
// administrator, validated with its OTP, and the authorisation code is
// exchanged for a patient JWT.
func PatientFlow(c *Client, admin, run string) Flow {
	bearer := "Bearer " + admin
	var n atomic.Int64
	return func(ctx context.Context, t *Tally) error {
		i := n.Add(1)
		patient := fmt.Sprintf("bench-%s-%d", run, i)
		from := ClientAddress(i)
		var act struct {
			OTP  string `json:"otp"`
			Code string `json:"activation_code"`
		}
		t0 := t.Begin(0)
		if err := c.call(ctx, StepCreateActivation, http.MethodPost, "/dhos/v1/patient/"+patient+"/activation", nil, http.StatusOK, &act, "Authorization", bearer, xff, from); err != nil {
			t.Failed(0)
			return err
		}
		t.Done(0, t0)
		var val struct {
			AuthCode string `json:"authorisation_code"`
		}
		t0 = t.Begin(1)
		if err := c.call(ctx, StepValidate, http.MethodPost, "/dhos/v1/activation/"+act.Code, []byte(`{"otp":"`+act.OTP+`"}`), http.StatusOK, &val, xff, from); err != nil {
			t.Failed(1)
			return err
		}
		t.Done(1, t0)
		var tok struct {
			JWT string `json:"jwt"`
		}
		t0 = t.Begin(2)
		if err := c.call(ctx, StepGetJWT, http.MethodGet, "/dhos/v1/patient/"+patient+"/jwt", nil, http.StatusOK, &tok, "X-Authorisation-Code", val.AuthCode, xff, from); err != nil {
			t.Failed(2)
			return err
		}
		t.Done(2, t0)
		if !strings.HasPrefix(tok.JWT, "eyJ") {
			return fmt.Errorf("get jwt: not a JWT: %q", tok.JWT)
		}
		return nil
	}
}

// Devices is a pool of registered devices: a flow takes one, so that no
// two flows activate the same device at once. It keeps each device's
// latest JWT.
type Devices struct {
	free chan int
	ids  []string
	mu   sync.Mutex
	jwts []string
}

// CreateDevices registers n devices.
func CreateDevices(ctx context.Context, c *Client, admin, run string, n int) (*Devices, error) {
	d := &Devices{free: make(chan int, n), ids: make([]string, n), jwts: make([]string, n)}
	for i := range n {
		var dev struct {
			UUID string `json:"uuid"`
		}
		body := map[string]any{"uuid": fmt.Sprintf("bench-%s-dev-%d", run, i), "location_id": "bench-ward-" + run, "description": "bench tablet"}
		if err := c.Post(ctx, "/dhos/v1/device", body, http.StatusOK, &dev, "Authorization", "Bearer "+admin); err != nil {
			return nil, err
		}
		d.ids[i] = dev.UUID
		d.free <- i
	}
	return d, nil
}

// JWTs are the device JWTs the flows have been given so far, one per
// device at most.
func (d *Devices) JWTs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, j := range d.jwts {
		if j != "" {
			out = append(out, j)
		}
	}
	return out
}

// ID is the id of device i.
func (d *Devices) ID(i int) string { return d.ids[i] }

// DeviceFlow is scenario (b): an administrator creates an activation for a
// registered device, the device validates its code, and exchanges the
// authorisation code for a device JWT.
func DeviceFlow(c *Client, admin string, devs *Devices) Flow {
	bearer := "Bearer " + admin
	return func(ctx context.Context, t *Tally) error {
		var i int
		select {
		case i = <-devs.free:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { devs.free <- i }()
		id := devs.ids[i]
		from := ClientAddress(int64(i))
		var act struct {
			Code string `json:"code"`
		}
		t0 := t.Begin(0)
		if err := c.call(ctx, StepCreateActivation, http.MethodPost, "/dhos/v1/device/"+id+"/activation", nil, http.StatusOK, &act, "Authorization", bearer, xff, from); err != nil {
			t.Failed(0)
			return err
		}
		t.Done(0, t0)
		var val struct {
			AuthCode string `json:"authorisation_code"`
		}
		t0 = t.Begin(1)
		if err := c.call(ctx, StepValidate, http.MethodPost, "/dhos/v1/activation/"+act.Code+"?type=send_entry", nil, http.StatusOK, &val, xff, from); err != nil {
			t.Failed(1)
			return err
		}
		t.Done(1, t0)
		var tok struct {
			JWT string `json:"jwt"`
		}
		t0 = t.Begin(2)
		if err := c.call(ctx, StepGetJWT, http.MethodGet, "/dhos/v1/device/"+id+"/jwt", nil, http.StatusOK, &tok, "X-Authorisation-Code", val.AuthCode, xff, from); err != nil {
			t.Failed(2)
			return err
		}
		t.Done(2, t0)
		d := devs
		d.mu.Lock()
		d.jwts[i] = tok.JWT
		d.mu.Unlock()
		return nil
	}
}

// CreateClinicians stores n clinicians who may sign in on SEND entry
// devices, and returns their send_entry_identifiers.
func CreateClinicians(ctx context.Context, c *Client, admin, run string, n int) ([]string, error) {
	var out []string
	for i := range n {
		ident := fmt.Sprintf("bench-%s-ident-%d", run, i)
		body := map[string]any{
			"clinician_id": fmt.Sprintf("bench-%s-clin-%d", run, i), "login_active": true, "products": []string{"SEND"},
			"groups": []string{"SEND Clinician"}, "send_entry_identifier": ident, "contract_expiry_eod_date": nil,
		}
		if err := c.Post(ctx, "/dhos/v1/clinician", body, http.StatusCreated, nil, "Authorization", "Bearer "+admin); err != nil {
			return nil, err
		}
		out = append(out, ident)
	}
	return out, nil
}

// ClinicianFlow is scenario (c): a clinician signs in on a tablet with the
// tablet's device JWT and gets a clinician JWT.
func ClinicianFlow(c *Client, deviceJWTs, idents []string) Flow {
	var n atomic.Int64
	return func(ctx context.Context, t *Tally) error {
		i := int(n.Add(1))
		var tok struct {
			JWT string `json:"jwt"`
		}
		t0 := t.Begin(0)
		if err := c.call(ctx, StepClinicianJWT, http.MethodGet, "/dhos/v1/clinician/jwt?send_entry_identifier="+idents[i%len(idents)], nil, http.StatusOK, &tok,
			"Authorization", "Bearer "+deviceJWTs[i%len(deviceJWTs)], xff, ClientAddress(int64(i))); err != nil {
			t.Failed(0)
			return err
		}
		t.Done(0, t0)
		return nil
	}
}
