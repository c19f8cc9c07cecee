package disco

import (
	"testing"

	"github.com/vireo-im/vireo/modules/module"
)

// TestVerXEP0115 checks the simple example of XEP-0115 §5.2.
func TestVerXEP0115(t *testing.T) {
	got := Ver([]module.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		[]string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"})
	if got != "QgayPKawpkPSDYmwT/WM94uAlu0=" {
		t.Fatalf("ver = %s", got)
	}
}
