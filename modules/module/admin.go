package module

import (
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// OnlineSession describes one bound session in a server-wide snapshot.
type OnlineSession struct {
	JID       jid.JID // full JID
	Available bool    // has sent available presence
	Priority  int
	Detached  bool // XEP-0198: waiting to be resumed
	// Inactive: the session holds back what can wait because its client said nobody looks
	// at it (XEP-0352 <inactive/>, a phone in a pocket).
	Inactive bool
}

// ServerSessions is implemented by Contexts that can reach every shard (the router's): the
// server-wide queries of service administration (XEP-0133), which no single shard can
// answer. Assert it on the Context (c.(module.ServerSessions)) and answer
// feature-not-implemented when it is missing.
type ServerSessions interface {
	// OnlineSessions asks every shard for its bound sessions and then runs done on this
	// shard, with a Context for the same user or entity, once all have answered. The
	// snapshot is not atomic across shards; it costs one op per shard, so it is for rare
	// administrative queries, not for anything per stanza. done owns the slice.
	OnlineSessions(done func(c Context, online []OnlineSession))
	// CloseUser ends every session of the account j names with cond, or only the session
	// of j's resource when j is a full JID, on the account's shard (an account an
	// administrator removed, a session an administrator ended). Safe to call from any
	// shard.
	CloseUser(j jid.JID, cond stanza.StreamCondition)
}

// Controller is the process the server runs in, for the administrative commands that act
// on it rather than on accounts or sessions: a configuration reload and a shutdown
// (XEP-0133 §4.31). main implements it; Registrar.Controller returns nil when the server
// runs without one (tests, embedding), and modules then answer feature-not-implemented.
// Both methods are safe to call from any goroutine.
type Controller interface {
	// Reload re-reads the configuration and applies what can change without a restart,
	// as SIGHUP does; it returns when that is done.
	Reload() error
	// Shutdown starts a clean stop of the process, as SIGTERM does, and returns at once.
	// msg is the reason, for the log; telling users is the caller's job.
	Shutdown(msg string)
}

// Federation is a Controller's hold on the federation policy: the [s2s] deny and allow
// lists of the config file, which XEP-0133's edit-blacklist and edit-whitelist (§4.11,
// §4.12) edit. A Controller without it (tests, embedding) has those commands answer
// feature-not-implemented.
type Federation interface {
	// FederationLists returns the lists in force.
	FederationLists() (deny, allow []string)
	// SetFederationList replaces one list (allow: the whitelist) in the config file and
	// in force; streams with domains it now refuses end at once. It returns the list as
	// the server reads it, or why it was refused, and then nothing changed.
	SetFederationList(allow bool, domains []string) ([]string, error)
}

// Administrators is a Controller that knows every account the configuration names an
// administrator of anything: the server, a host, a service (a MUC service's admins rank
// as every room's owner). A host's administrator may not act on those beyond its own.
type Administrators interface {
	// NamedAdministrators returns their bare JIDs.
	NamedAdministrators() []string
}

// Restarter is a Controller that can restart the process in place (XEP-0133 §4.30): a
// clean stop, as Shutdown, then the same program with the same arguments.
type Restarter interface {
	// Restart starts it and returns at once; msg is the reason, for the log.
	Restart(msg string)
}

// Settings is a Controller's hold on module settings kept in the config file, for
// XEP-0133's commands on them (edit-admin, set-welcome, delete-welcome). A setting is
// written to [modules.<id>] (comments and every other line kept) and the module takes it
// at once (Reconfigurer), as a reload would give it.
type Settings interface {
	// ModuleSetting returns key of [modules.<id>] in force: a string, a []any of strings,
	// or nil when unset.
	ModuleSetting(id, key string) any
	// SetModuleSetting writes key = value (a string or a []string) and has the module
	// take it. A value the module refuses, or a file where that cannot be done safely,
	// changes nothing.
	SetModuleSetting(id, key string, value any) error
}

// RoomInfo is one chat room as an operator's listing shows it.
type RoomInfo struct {
	JID        string `json:"jid"`
	Name       string `json:"name,omitempty"`
	Occupants  int    `json:"occupants"`
	Public     bool   `json:"public"`
	Persistent bool   `json:"persistent"`
	Locked     bool   `json:"locked,omitempty"` // created, not yet configured
}

// RoomDirectory is implemented by a group chat module: the rooms of every service it
// runs, for the operator's tools (vireoctl rooms). Safe for concurrent use.
type RoomDirectory interface {
	Rooms() []RoomInfo
}
