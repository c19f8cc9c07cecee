package main

import (
	"encoding/xml"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/vireo-im/vireo/modules/module"
)

// TestDOAP keeps docs/vireo.doap (XEP-0453, the list of what Vireo implements that
// xmpp.org and operators read) honest against the code: it parses, names each XEP once
// with a status, and lists the XEP of every module this binary registers.
func TestDOAP(t *testing.T) {
	raw, err := os.ReadFile("docs/vireo.doap")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Project struct {
			Name       string `xml:"name"`
			Implements []struct {
				Resource string `xml:"http://www.w3.org/1999/02/22-rdf-syntax-ns# resource,attr"`
				XEP      *struct {
					Ref struct {
						Resource string `xml:"http://www.w3.org/1999/02/22-rdf-syntax-ns# resource,attr"`
					} `xml:"https://linkmauve.fr/ns/xmpp-doap# xep"`
					Status string `xml:"https://linkmauve.fr/ns/xmpp-doap# status"`
				} `xml:"https://linkmauve.fr/ns/xmpp-doap# SupportedXep"`
			} `xml:"http://usefulinc.com/ns/doap# implements"`
		} `xml:"http://usefulinc.com/ns/doap# Project"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/vireo.doap: %v", err)
	}
	if doc.Project.Name != "Vireo" {
		t.Fatalf("project name %q", doc.Project.Name)
	}
	xepURL := regexp.MustCompile(`^https://xmpp\.org/extensions/xep-(\d{4})\.html$`)
	rfcURL := regexp.MustCompile(`^https://xmpp\.org/rfcs/rfc\d{4}\.html$`)
	listed := map[int]string{}
	rfcs := 0
	for _, im := range doc.Project.Implements {
		if im.XEP == nil {
			if !rfcURL.MatchString(im.Resource) {
				t.Errorf("implements %q: not an XMPP RFC address", im.Resource)
			}
			rfcs++
			continue
		}
		m := xepURL.FindStringSubmatch(im.XEP.Ref.Resource)
		if m == nil {
			t.Errorf("xep %q: not an XEP address", im.XEP.Ref.Resource)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if _, dup := listed[n]; dup {
			t.Errorf("XEP-%04d listed twice", n)
		}
		switch im.XEP.Status {
		case "complete", "partial":
		default:
			t.Errorf("XEP-%04d: status %q (want complete or partial)", n, im.XEP.Status)
		}
		listed[n] = im.XEP.Status
	}
	if rfcs == 0 || len(listed) == 0 {
		t.Fatalf("nothing listed: %d RFCs, %d XEPs", rfcs, len(listed))
	}
	mods := module.All()
	if len(mods) == 0 {
		t.Fatal("no modules registered: the binary's imports changed")
	}
	for _, m := range mods {
		if m.XEP == 0 {
			continue
		}
		if _, ok := listed[m.XEP]; !ok {
			t.Errorf("module %s implements XEP-%04d, which docs/vireo.doap does not list", m.ID, m.XEP)
		}
	}
}
