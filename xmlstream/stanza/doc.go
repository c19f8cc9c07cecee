// Package stanza holds RFC 6120 protocol errors as values: stream error conditions (§4.9.3)
// and stanza error conditions and types (§8.3), with their wire serialization.
//
// It owns the error vocabulary only. It must not parse XML or import other Vireo packages
// (xmlstream imports it); serialization appends to a caller's slice and never allocates on its
// own beyond growing that slice.
//
// Both error kinds work with errors.Is: a *StreamError matches another *StreamError (or a bare
// StreamCondition) with the same condition, and an *Error matches another *Error (or a bare
// Condition) with the same condition.
package stanza
