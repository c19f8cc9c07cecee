package engine

// RewriteComponentNS exposes rewriteNS to the external tests.
var RewriteComponentNS = rewriteNS

var DialbackKey = dialbackKey
