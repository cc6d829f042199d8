package secret

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestHashIsKeyedAndPurposeBound(t *testing.T) {
	h, err := NewHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewHasher([]byte("fedcba9876543210fedcba9876543210"))
	a := h.Hash("otp", "ABCD")
	if !Equal(a, h.Hash("otp", "ABCD")) {
		t.Fatal("same input, different hash")
	}
	if Equal(a, h.Hash("code", "ABCD")) || Equal(a, other.Hash("otp", "ABCD")) || Equal(a, h.Hash("otp", "ABCE")) {
		t.Fatal("hash does not depend on purpose, key and value")
	}
	if strings.Contains(string(a), "ABCD") {
		t.Fatal("plain value in hash")
	}
	if _, err := NewHasher([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestDeriveIsStableAndInAlphabet(t *testing.T) {
	h, _ := NewHasher(key)
	a := h.Derive("activation-code", "uuid-1", Upper, 30)
	if len(a) != 30 || a != h.Derive("activation-code", "uuid-1", Upper, 30) || a == h.Derive("activation-code", "uuid-2", Upper, 30) {
		t.Fatalf("derive not stable or not distinct: %q", a)
	}
	for _, c := range a {
		if !strings.ContainsRune(Upper, c) {
			t.Fatalf("%q outside alphabet", c)
		}
	}
}

func TestRandomUsesWholeAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for i := 0; i < 200; i++ {
		s, err := Random(OTP, 4)
		if err != nil || len(s) != 4 {
			t.Fatalf("Random = %q, %v", s, err)
		}
		for _, c := range s {
			if strings.ContainsRune("O0L1I", c) {
				t.Fatalf("look-alike %q in OTP", c)
			}
			seen[c] = true
		}
	}
	if len(seen) != len(OTP) {
		t.Fatalf("saw %d of %d characters in 800 draws", len(seen), len(OTP))
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKey("", dir, "k", false); err == nil {
		t.Fatal("no key and no generation must fail (production)")
	}
	if _, err := LoadKey("short", dir, "k", true); err == nil {
		t.Fatal("short configured key accepted")
	}
	var wg sync.WaitGroup
	keys := make([][]byte, 10)
	for i := range keys {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k, err := LoadKey("", dir, "k", true)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}(i)
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if string(k) != string(keys[0]) || len(k) < MinKeyLength {
			t.Fatal("processes starting together disagree on the generated key")
		}
	}
	st, err := os.Stat(filepath.Join(dir, "k"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v", st.Mode().Perm(), err)
	}
}
