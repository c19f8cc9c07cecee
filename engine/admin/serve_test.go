package admin

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestServeLongLines: a message op at its limits, every character one JSON escapes into
// six bytes, fits a request line and gets an answer; a line past MaxLine gets an error
// answer, not a closed socket (which vireoctl takes for a server that is not running).
func TestServeLongLines(t *testing.T) {
	b := openBackend(t, filepath.Join(t.TempDir(), "data"))
	defer b.st.Close()
	ask := func(line []byte) (Response, error) {
		c, s := net.Pipe()
		defer c.Close()
		go serveConn(s, b, zerolog.Nop())
		go func() { c.Write(append(line, '\n')) }()
		var resp Response
		err := json.NewDecoder(c).Decode(&resp)
		return resp, err
	}
	big := strings.Repeat("<", MaxMessageText)
	line, _ := json.Marshal(Request{Op: "message", From: "example.org", To: "alice@example.org", Subject: big, Body: big})
	resp, err := ask(line)
	if err != nil || strings.Contains(resp.Error, "longer than") {
		t.Fatalf("a message op at its limits (%d bytes): %+v, %v", len(line), resp, err)
	}
	resp, err = ask([]byte(`{"op":"stats","body":"` + strings.Repeat("x", MaxLine) + `"}`))
	if err != nil || !strings.Contains(resp.Error, "longer than") {
		t.Fatalf("an overlong line: %+v, %v; want an error answer", resp, err)
	}
}
