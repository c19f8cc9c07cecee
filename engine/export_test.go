package engine

// RewriteComponentNS exposes rewriteNS to the external tests.
var RewriteComponentNS = rewriteNS

var DialbackKey = dialbackKey

// RewriteXMLNS exposes rewriteXMLNS (s2s namespaces) to the external tests.
var RewriteXMLNS = rewriteXMLNS
