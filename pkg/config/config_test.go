package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoader(t *testing.T) {
	l := NewLoaderFrom(MapLookup(map[string]string{
		"A": "7", "B": "x", "C": "true", "D": "30s", "ENVIRONMENT": "test",
		"HS_KEY": "s3cret-value", "TOKEN_ISSUER": "https://i/", "DATABASE_URL": "postgres://u:pw@h/db",
	}))
	if l.Int("A", 1, 0, 10) != 7 || l.Int("MISSING", 3, 0, 10) != 3 || !l.Bool("C", false) || l.Duration("D", 0) != 30*time.Second {
		t.Fatal("typed values not read")
	}
	if l.Environment() != Test {
		t.Fatal("ENVIRONMENT is case-insensitive")
	}
	_ = l.Secret("HS_KEY")
	_ = l.String("TOKEN_ISSUER", "")
	_ = l.String("DATABASE_URL", "")
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	l.Int("B", 1, 0, 10)
	l.Int("A", 1, 8, 10)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "B:") || !strings.Contains(err.Error(), "A:") {
		t.Fatalf("every problem must be reported: %v", err)
	}
	sum := map[string]any{}
	kv := l.Summary()
	for i := 0; i < len(kv); i += 2 {
		sum[kv[i].(string)] = kv[i+1]
	}
	if sum["HS_KEY"] != "********" || sum["DATABASE_URL"] != "********" {
		t.Fatalf("secrets not masked: %v", sum)
	}
	if sum["TOKEN_ISSUER"] != "https://i/" {
		t.Fatalf("non-secret masked: %v", sum)
	}
}

func TestEnvironmentDefaultsToProduction(t *testing.T) {
	l := NewLoaderFrom(MapLookup(nil))
	if !l.Environment().IsProduction() {
		t.Fatal("unset ENVIRONMENT must mean PRODUCTION")
	}
	l = NewLoaderFrom(MapLookup(map[string]string{"ENVIRONMENT": "LAPTOP"}))
	if l.Environment() != Production || l.Err() == nil {
		t.Fatal("unknown ENVIRONMENT must be an error and fall back to PRODUCTION")
	}
}

func TestJSONList(t *testing.T) {
	type entry struct {
		ID string `json:"id"`
	}
	list, err := JSONList[entry](" [{\"id\":\"a\"},{\"id\":\"b\"}]\n", "entries")
	if err != nil || len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("JSONList: %v %v", list, err)
	}
	for _, blank := range []string{"", "  \n"} {
		if list, err := JSONList[entry](blank, "entries"); err != nil || list != nil {
			t.Fatalf("blank %q: %v %v", blank, list, err)
		}
	}
	for _, bad := range []string{`[{"id":"a","other":1}]`, `{"id":"a"}`, `[`} {
		_, err := JSONList[entry](bad, "things")
		if err == nil || !strings.HasPrefix(err.Error(), "want a JSON array of things: ") {
			t.Fatalf("%s: %v", bad, err)
		}
	}
}
