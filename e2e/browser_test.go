package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds the Chromium binary (Debian's chromium package). When it
// is missing the browser test skips, unless REQUIRE_CHROMIUM=1 (CI),
// where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM_PATH"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("REQUIRE_CHROMIUM") == "1" {
		t.Fatal("REQUIRE_CHROMIUM=1 but no chromium binary was found (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); set REQUIRE_CHROMIUM=1 to make this a failure")
	return ""
}

// browserContext starts a headless Chromium with a fresh profile.
func browserContext(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs one browser action that returns a value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// TestBrowserSSO is the sign-in as a person does it, in headless
// Chromium: a sibling app sends the browser to the suite, which sends it
// to the upstream provider's login page; after signing in there the
// person is in the app. The second app signs them in without any page of
// the upstream. When the upstream provider sends its back-channel logout
// (the smartcard was removed), the suite ends the session, both apps get
// logout tokens and drop theirs, and each app sends the browser to sign
// in again.
func TestBrowserSSO(t *testing.T) {
	path := chromium(t)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			w := startSSO(t, b.env(t))
			ctx := browserContext(t, path)
			// app1: the suite's sign-in page, then the upstream's login.
			if err := chromedp.Do(ctx,
				chromedp.Navigate(w.app1.URL+"/"),
				chromedp.WaitVisible("#provider-upstream"),
				chromedp.Click("#provider-upstream"),
				chromedp.WaitVisible("#username"),
			); err != nil {
				t.Fatalf("to the upstream login: %v", err)
			}
			location := run(t, ctx, chromedp.Location())
			if !strings.HasPrefix(location, w.up.URL) {
				t.Fatalf("login page at %s, want the upstream %s", location, w.up.URL)
			}
			if err := chromedp.Do(ctx,
				chromedp.SendKeys("#username", upstreamUser),
				chromedp.SendKeys("#password", upstreamPassword),
				chromedp.Submit("#password"),
				chromedp.WaitVisible("#hello"),
			); err != nil {
				t.Fatalf("upstream sign-in: %v", err)
			}
			hello, location := run(t, ctx, chromedp.Text("#hello")), run(t, ctx, chromedp.Location())
			if hello != "hello "+upstreamSubject+" from app1" || location != w.app1.URL+"/" {
				t.Fatalf("app1 shows %q at %s", hello, location)
			}

			// app2: signed in without the upstream's login page.
			pages, logins := w.up.pages.Load(), w.up.logins.Load()
			if err := chromedp.Do(ctx, chromedp.Navigate(w.app2.URL+"/"), chromedp.WaitVisible("#hello")); err != nil {
				t.Fatalf("app2: %v", err)
			}
			hello = run(t, ctx, chromedp.Text("#hello"))
			if hello != "hello "+upstreamSubject+" from app2" {
				t.Fatalf("app2 shows %q", hello)
			}
			if w.up.pages.Load() != pages || w.up.logins.Load() != logins {
				t.Fatal("app2 needed a second sign-in at the upstream")
			}
			if w.app1.logins.Load() != 1 || w.app2.logins.Load() != 1 {
				t.Fatalf("app logins %d %d", w.app1.logins.Load(), w.app2.logins.Load())
			}

			// The upstream's back-channel logout ends both.
			resp, err := http.PostForm(w.s.URL+"/backchannel-logout", url.Values{"logout_token": {w.up.logoutToken(t, suiteClientID, upstreamSubject, nil)}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("back-channel logout: %d", resp.StatusCode)
			}
			waitFor(t, 15*time.Second, "both apps to get their logout tokens", func() bool {
				return w.app1.logouts.Load() == 1 && w.app2.logouts.Load() == 1
			})
			for _, app := range []*siblingApp{w.app1, w.app2} {
				if err := chromedp.Do(ctx, chromedp.Navigate(app.URL+"/"), chromedp.WaitVisible("#provider-upstream")); err != nil {
					t.Fatalf("%s after logout: %v", app.name, err)
				}
				title, location := run(t, ctx, chromedp.Text("#title")), run(t, ctx, chromedp.Location())
				if title != "Sign in" || !strings.HasPrefix(location, w.s.URL+"/login?") {
					t.Fatalf("%s after logout shows %q at %s, want the sign-in page", app.name, title, location)
				}
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(w.s.URL+"/session")); err != nil {
				t.Fatal(err)
			}
			body := run(t, ctx, chromedp.Text("body"))
			if !strings.Contains(body, "not signed in") {
				t.Errorf("the suite's session after logout: %s", body)
			}
		})
	}
}
