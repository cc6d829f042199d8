package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit/audittest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// routingKey is the contract's (the default of AUDIT_ROUTING_KEY).
const routingKey = "dhos.34837004"

// auditEnv is the environment that makes a suite publish to a fresh
// exchange, and a consumer of a queue bound to it.
func auditEnv(t *testing.T, base map[string]string) (map[string]string, *audittest.Consumer) {
	t.Helper()
	amqpURL := audittest.AMQPURL(t)
	exchange := audittest.Unique("dhos-e2e")
	c := audittest.Consume(t, amqpURL, exchange, routingKey)
	env := map[string]string{"AMQP_URL": amqpURL, "AUDIT_EXCHANGE": exchange}
	for k, v := range base {
		env[k] = v
	}
	return env, c
}

// auditEvent is an event of GET /dhos/v1/audit/events.
type auditEvent struct {
	ID          string         `json:"id"`
	Time        string         `json:"time"`
	EventType   string         `json:"event_type"`
	Actor       string         `json:"actor"`
	Subject     string         `json:"subject"`
	Outcome     string         `json:"outcome"`
	Reason      string         `json:"reason"`
	Service     string         `json:"service"`
	EventData   map[string]any `json:"event_data"`
	PublishedAt string         `json:"published_at"`
}

// auditEvents pages through the query endpoint.
func auditEvents(t *testing.T, s *Suite, token string, query url.Values) []auditEvent {
	t.Helper()
	var out []auditEvent
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("page_size", "200")
	for range 1000 {
		r := Expect(t, s.Do("GET", "/dhos/v1/audit/events?"+q.Encode(), token, nil), 200)
		var page struct {
			Events        []auditEvent `json:"events"`
			NextPageToken string       `json:"next_page_token"`
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatalf("audit page %s: %v", r.Body, err)
		}
		out = append(out, page.Events...)
		if page.NextPageToken == "" {
			return out
		}
		q.Set("page_token", page.NextPageToken)
	}
	t.Fatal("audit paging did not end")
	return nil
}

// waitAuthReady waits until every service accepts token: the audit query
// fans out to all four, each verifying it. (A service that started before
// the token service may refuse tokens for a moment while its connection to
// the token service backs off.)
func waitAuthReady(t *testing.T, s *Suite, token string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.Do("GET", "/dhos/v1/audit/events?page_size=1", token, nil)
		if r.Status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the services do not accept tokens: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// brokerEvents returns the distinct messages of the type about subject.
func brokerEvents(c *audittest.Consumer, eventType, subject string) map[string]audittest.Delivery {
	out := map[string]audittest.Delivery{}
	for _, d := range c.Deliveries() {
		if d.Message.EventType == eventType && d.Message.Subject == subject {
			out[d.MessageID] = d
		}
	}
	return out
}

// TestAuditContractEvents drives a refused device JWT, a refused clinician
// sign-in and a device update through the REST edge and finds exactly the
// contract's event for each on the broker and through the query endpoint.
func TestAuditContractEvents(t *testing.T) {
	audittest.AMQPURL(t)
	audittest.Lock(t, false)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, c := auditEnv(t, b.env(t))
			s := Start(t, env)
			admin := s.AdminToken(t)
			auditor := s.SystemToken(t, "read:audit")
			waitAuthReady(t, s, admin)

			// A refused device JWT: a device with a wrong authorisation code.
			id := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "Tablet"})["uuid"].(string)
			code := Expect(t, s.Do("POST", "/dhos/v1/device/"+id+"/activation", admin, nil), 200).JSON(t)["code"].(string)
			s.Secret(code)
			auth := Expect(t, s.Do("POST", "/dhos/v1/activation/"+code+"?type=send_entry", "", nil), 200).JSON(t)["authorisation_code"].(string)
			s.Secret(auth)
			Expect(t, s.Do("GET", "/dhos/v1/device/"+id+"/jwt", "", nil, "x-authorisation-code", auth+"x"), 403)
			jwt := Expect(t, s.Do("GET", "/dhos/v1/device/"+id+"/jwt", "", nil, "x-authorisation-code", auth), 200).JSON(t)["jwt"].(string)
			s.Secret(jwt)

			// A refused clinician sign-in: an identifier nobody has.
			Expect(t, s.Do("GET", "/dhos/v1/clinician/jwt?send_entry_identifier="+Unique("nobody"), jwt, nil), 404)

			// A device update.
			Expect(t, s.Do("PATCH", "/dhos/v1/device/"+id, admin, map[string]any{"description": "Renamed", "active": true}), 200)

			for _, want := range []struct {
				eventType, subject, outcome, reason, service string
				data                                         map[string]any
			}{
				{"SEND entry device auth failed", id, "failure", "authorisation code does not match", "activation",
					map[string]any{"device_id": id, "reason": "authorisation code does not match"}},
				{"SEND entry login failure", "", "failure", "unknown send_entry_identifier", "session",
					map[string]any{"device_id": id, "reason": "unknown send_entry_identifier"}},
				{"SEND entry device update", id, "success", "", "device",
					map[string]any{"device_id": id, "active": true, "changed_fields": []any{"description", "active"}, "modified_by": "e2e"}},
			} {
				// Through the query endpoint: exactly one, by principal (the
				// device is the subject, or the actor of the sign-in) and type.
				got := auditEvents(t, s, auditor, url.Values{"principal": {id}, "type": {want.eventType}})
				if len(got) != 1 {
					t.Fatalf("%s: %d events through the query endpoint, want 1: %+v", want.eventType, len(got), got)
				}
				e := got[0]
				if e.Subject != want.subject || e.Outcome != want.outcome || e.Reason != want.reason || e.Service != want.service {
					t.Fatalf("%s: event %+v", want.eventType, e)
				}
				for k, v := range want.data {
					gj, _ := json.Marshal(e.EventData[k])
					wj, _ := json.Marshal(v)
					if string(gj) != string(wj) {
						t.Fatalf("%s: event_data[%s] = %s, want %s (%v)", want.eventType, k, gj, wj, e.EventData)
					}
				}
				// On the broker: the same event, exactly once by id.
				if missing := c.WaitFor([]string{e.ID}, 30*time.Second); len(missing) > 0 {
					t.Fatalf("%s: event %s never reached the broker", want.eventType, e.ID)
				}
				msgs := brokerEvents(c, want.eventType, want.subject)
				if want.subject == "" {
					msgs = map[string]audittest.Delivery{}
					for _, d := range c.Deliveries() {
						if d.Message.EventType == want.eventType && d.Message.EventData["device_id"] == id {
							msgs[d.MessageID] = d
						}
					}
				}
				if len(msgs) != 1 {
					t.Fatalf("%s: %d distinct messages on the broker, want 1", want.eventType, len(msgs))
				}
				m := msgs[e.ID].Message
				if m.ID != e.ID || m.Time != e.Time || m.Outcome != want.outcome || m.Reason != want.reason || m.Service != want.service ||
					m.EventData["device_id"] != id {
					t.Fatalf("%s: message %+v, query %+v", want.eventType, m, e)
				}
			}

			// The query endpoint needs read:audit.
			Expect(t, s.Do("GET", "/dhos/v1/audit/events", "", nil), 401)
			Expect(t, s.Do("GET", "/dhos/v1/audit/events", s.SystemToken(t, "read:send_device"), nil), 403)
			Expect(t, s.Do("GET", "/dhos/v1/audit/events?from=yesterday", auditor, nil), 400)

			// No secret reached the broker or the query endpoint.
			all := auditEvents(t, s, auditor, nil)
			dump, _ := json.Marshal(all)
			checkNoSecrets(t, s, c, string(dump))
		})
	}
}

// checkNoSecrets fails when a code, OTP or token handed to a client is in
// an audit message or in the query endpoint's answer.
func checkNoSecrets(t *testing.T, s *Suite, c *audittest.Consumer, queried string) {
	t.Helper()
	s.mu.Lock()
	secrets := append([]string(nil), s.secrets...)
	s.mu.Unlock()
	for _, sec := range secrets {
		if strings.Contains(queried, sec) {
			t.Errorf("the audit query answer carries a secret (%d characters)", len(sec))
		}
		for _, d := range c.Deliveries() {
			if strings.Contains(string(d.Body), sec) {
				t.Errorf("an audit message (%s) carries a secret (%d characters)", d.Message.EventType, len(sec))
			}
		}
	}
}

// TestAuditDeliveryThroughOutageAndRestart keeps making audited changes
// and refusals through the edge while the broker is stopped and started
// again and while the device service restarts, then checks that every
// event the outboxes hold reached the broker at least once, that nothing
// else did, and that there is one event per change made.
func TestAuditDeliveryThroughOutageAndRestart(t *testing.T) {
	audittest.AMQPURL(t)
	audittest.Lock(t, true)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, c := auditEnv(t, b.env(t))
			s := Start(t, env)
			admin := s.AdminToken(t)
			auditor := s.SystemToken(t, "read:audit")
			waitAuthReady(t, s, admin)
			id := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "Tablet"})["uuid"].(string)

			// The load: device updates (device service) and refused device
			// JWTs (activation service), counted by outcome.
			var mu sync.Mutex
			counts := map[string]int{}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
					var r Response
					kind := "update"
					if i%2 == 0 {
						r = s.Do("PATCH", "/dhos/v1/device/"+id, admin, map[string]any{"description": "d" + string(rune('a'+i%26))})
					} else {
						kind = "refusal"
						r = s.Do("GET", "/dhos/v1/device/"+id+"/jwt", "", nil, "x-authorisation-code", "wrong")
					}
					mu.Lock()
					counts[kind+" "+statusClass(r.Status)]++
					mu.Unlock()
				}
			}()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					close(stop)
					<-done
				}
			})
			wait := func(d time.Duration) { time.Sleep(d) }

			wait(time.Second)
			audittest.StopBroker(t)
			brokerDown := true
			t.Cleanup(func() {
				if brokerDown {
					audittest.StartBroker(t)
				}
			})
			wait(2 * time.Second)
			waiting := 0
			for _, e := range auditEvents(t, s, auditor, url.Values{"principal": {id}}) {
				if e.PublishedAt == "" {
					waiting++
				}
			}
			if waiting == 0 {
				t.Error("no event waits in the outbox while the broker is down")
			}
			audittest.StartBroker(t)
			brokerDown = false
			wait(time.Second)
			s.Restart(t, "device")
			wait(time.Second)
			close(stop)
			<-done

			all := auditEvents(t, s, auditor, nil)
			ids := make([]string, 0, len(all))
			byType := map[string]int{}
			for _, e := range all {
				ids = append(ids, e.ID)
				if e.Subject == id {
					byType[e.EventType]++
				}
			}
			if missing := c.WaitFor(ids, 90*time.Second); len(missing) > 0 {
				t.Fatalf("%d of %d events never reached the broker, e.g. %s", len(missing), len(ids), missing[0])
			}
			known := map[string]bool{}
			for _, id := range ids {
				known[id] = true
			}
			delivered := c.IDs()
			dups := 0
			for mid, n := range delivered {
				if !known[mid] {
					t.Fatalf("the broker carries an event no outbox holds: %s", mid)
				}
				dups += n - 1
			}
			mu.Lock()
			updates, refusals := counts["update 2xx"], counts["refusal 4xx"]
			t.Logf("requests by outcome: %v", counts)
			mu.Unlock()
			if updates == 0 || refusals == 0 {
				t.Fatalf("load too small: %v", counts)
			}
			if byType["SEND entry device update"] != updates || byType["SEND entry device auth failed"] != refusals {
				t.Fatalf("events %v, want %d device updates and %d refused device JWTs (one per change or refusal made)", byType, updates, refusals)
			}
			t.Logf("%s: %d events in the outboxes; %d delivered at least once, %d duplicate deliveries, 0 missing, 0 unknown",
				b.name, len(ids), len(delivered), dups)
			checkNoSecrets(t, s, c, "")
		})
	}
}

func statusClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 400 && code < 500:
		return "4xx"
	case code >= 500:
		return "5xx"
	}
	return "none"
}

// Restart stops one service (SIGINT, as an orchestrator does) and starts it
// again with the same environment, then waits until it serves.
func (s *Suite) Restart(t testing.TB, p string) {
	t.Helper()
	old := s.procs[p]
	_ = old.cmd.Process.Signal(os.Interrupt)
	select {
	case <-old.exited:
	case <-time.After(15 * time.Second):
		_ = old.cmd.Process.Kill()
		<-old.exited
	}
	cmd := exec.Command(filepath.Join(binDir, p))
	cmd.Env = old.cmd.Env
	cmd.Stdout, cmd.Stderr = s.logs[p], s.logs[p]
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.procs[p] = &process{cmd: cmd, exited: exited}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	cc, err := grpc.NewClient(s.Addr[p], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come back: %v", p, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
