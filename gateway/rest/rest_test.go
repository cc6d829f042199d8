package rest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dhosauth/dhosauth/gateway/rest"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
)

func TestHandlerBuildsTheEdge(t *testing.T) {
	// Connections are lazy: nothing needs to listen for the plain routes.
	conns, err := rest.Dial(service.Addresses{Activation: "127.0.0.1:1", Device: "127.0.0.1:1", Token: "127.0.0.1:1", Session: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	h, err := rest.Handler(context.Background(), rest.Options{Conns: conns, Environment: config.Test, Version: rest.VersionInfo{Version: "v"}})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/running": 200, "/version": 200, "/docs": 200, "/nope": 404} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			b, _ := io.ReadAll(w.Body)
			t.Errorf("%s: %d %s, want %d", path, w.Code, b, want)
		}
	}
}
