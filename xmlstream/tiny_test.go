package xmlstream

import (
	"strings"
	"testing"
)

func BenchmarkTiny(b *testing.B) {
	for _, s := range []string{`<r xmlns='urn:xmpp:sm:3'/>`, `<presence/>`, `<message to='romeo@example.net' type='chat' id='x1'><body>hi</body></message>`} {
		body := []byte(strings.Repeat(s, 100))
		b.Run(s[:5], func(b *testing.B) {
			sc := NewScanner()
			var st State
			st.Reset(KindClient, nil)
			scanAll(b, sc, &st, []byte(hdrClient))
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				scanAll(b, sc, &st, body)
			}
		})
	}
}
