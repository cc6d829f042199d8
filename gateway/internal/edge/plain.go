package edge

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/dhosauth/dhosauth/gateway/internal/apidocs"
)

// handleRunning answers GET /running: 200 with an empty body while the
// process is alive.
func handleRunning(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// versionHandler answers GET /version with v.
func versionHandler(v VersionInfo) http.HandlerFunc {
	body, _ := json.Marshal(v)
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, body)
	}
}

// handleOpenAPI serves the generated OpenAPI document.
func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, apidocs.Spec())
}

// handleDocs serves the documentation page (outside production only).
func handleDocs(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", apidocs.PageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Length", strconv.Itoa(len(apidocs.Page())))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(apidocs.Page())
}

func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
