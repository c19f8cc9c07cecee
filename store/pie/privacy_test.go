package pie

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream"
)

// TestPrivacyBlockList: which items of §4.7's privacy lists become the block list.
func TestPrivacyBlockList(t *testing.T) {
	doc := func(q string) string {
		return `<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'><user name='u' password='p'>` + q + `</user></host></server-data>`
	}
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"none", ``, nil},
		{"ejabberd's block list",
			`<query xmlns='jabber:iq:privacy'><list name='Blocked contacts'><item type='jid' value='spam@b.example' action='deny' order='1'/><item type='jid' value='c.example' action='deny' order='2'/></list><default name='Blocked contacts'/></query>`,
			[]string{"spam@b.example", "c.example"}},
		{"the default list's order, not the document's",
			`<query xmlns='jabber:iq:privacy'><default name='d'/><list name='d'><item type='jid' value='y@b' action='deny' order='20'/><item type='jid' value='x@b' action='deny' order='10'/></list></query>`,
			[]string{"x@b", "y@b"}},
		{"only the default list",
			`<query xmlns='jabber:iq:privacy'><list name='other'><item type='jid' value='x@b' action='deny' order='1'/></list><list name='d'><item type='jid' value='y@b' action='deny' order='1'/></list><default name='d'/></query>`,
			[]string{"y@b"}},
		{"no default list",
			`<query xmlns='jabber:iq:privacy'><list name='d'><item type='jid' value='y@b' action='deny' order='1'/></list></query>`,
			nil},
		{"partial, by group or subscription, allowed first",
			`<query xmlns='jabber:iq:privacy'><list name='d'>` +
				`<item type='jid' value='msg@b' action='deny' order='1'><message/></item>` +
				`<item type='group' value='Enemies' action='deny' order='2'/>` +
				`<item type='subscription' value='none' action='deny' order='3'/>` +
				`<item type='jid' value='ok@b' action='allow' order='4'/>` +
				`<item type='jid' value='ok@b' action='deny' order='5'/>` +
				`<item action='deny' order='6'/>` +
				`<item type='jid' value='bad@b' action='deny' order='7'/>` +
				`<item type='jid' value='bad@b' action='deny' order='8'/>` +
				`</list><default name='d'/></query>`,
			[]string{"bad@b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, err := Parse([]byte(doc(tc.query)))
			if err != nil || len(users) != 1 {
				t.Fatalf("parse: %v %v", users, err)
			}
			if !reflect.DeepEqual(users[0].Blocked, tc.want) {
				t.Fatalf("blocked %q, want %q", users[0].Blocked, tc.want)
			}
		})
	}

	// What an export writes reads back the same.
	var u User
	u.Blocked = []string{"spam@b.example", "c.example", "x@b/r"}
	var bld xmlstream.Builder
	writePrivacy(&bld, &u)
	var b strings.Builder
	b.Write(bld.B)
	users, err := Parse([]byte(doc(b.String())))
	if err != nil || !reflect.DeepEqual(users[0].Blocked, u.Blocked) {
		t.Fatalf("read back %q (%v) from %s", users[0].Blocked, err, b.String())
	}
	if !strings.Contains(b.String(), "<default name='Blocked contacts'/>") {
		t.Fatalf("no default list in %s", b.String())
	}

	many := strings.Repeat(`<item type='jid' value='x@b' action='deny' order='1'/>`, maxPrivacyItems+1)
	if _, err := Parse([]byte(doc(`<query xmlns='jabber:iq:privacy'><list name='d'>` + many + `</list></query>`))); err == nil {
		t.Fatal("a privacy list past the bound was read")
	}
}
