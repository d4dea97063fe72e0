package battleid

import "testing"

func TestValid(t *testing.T) {
	for _, id := range []string{"a", "AZaz09_-", New(), "12345678901234567890123456789012"} {
		if !Valid(id) {
			t.Errorf("Valid(%q) = false", id)
		}
	}
	for _, id := range []string{"", "..", "a/b", "a%2Fb", `a\b`, "é", "a b", "123456789012345678901234567890123", "/etc"} {
		if Valid(id) {
			t.Errorf("Valid(%q) = true", id)
		}
	}
	if a, b := New(), New(); a == b || len(a) != 10 {
		t.Errorf("New gave %q and %q", a, b)
	}
}
