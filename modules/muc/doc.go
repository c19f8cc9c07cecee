// Package muc implements XEP-0045: Multi-User Chat, with XEP-0421 occupant ids, XEP-0410
// self-ping, XEP-0424 and XEP-0425 retraction (tombstones in history and archive),
// XEP-0359 stanza ids on reflected messages and XEP-0203 delays on history.
//
// # Services and rooms
//
// The module claims one service domain per virtual host, <subdomain>.<host>
// (conference.example.org by default; [modules.muc] subdomain). The router runs every
// stanza for a room (room@service, room@service/nick) on the shard of the room's bare
// JID, so a room's state — configuration, affiliations, occupants, history — is touched
// by one goroutine and has no lock. The only state shared between shards is each
// service's map of loaded rooms (sync.Map; an entry is created and deleted only on its
// room's shard) and its directory: every room's name, visibility and occupant count,
// under a mutex, read by disco#items on the service's own shard and by the room bound.
//
// A room is created by the first presence to it that carries <x xmlns='…muc'/> (only
// users of this server's hosts may create rooms unless create = "anyone"); it is locked
// until its owner submits a configuration form, an empty one for an instant room
// (§10.1). A room that is not persistent disappears with its last occupant.
//
// # Occupants
//
// An occupant is a nickname with the real sessions behind it: XEP-0045 §7.2.10 lets one
// bare JID hold one nickname from several resources, and every in-room stanza goes to each
// of them. Joining sends, in the order of §7.1, every other occupant's presence, the
// joiner's presence to the others, the self-presence (status 110, and 100, 170, 201 as
// they apply, with the client's id), the history, and the subject (an empty <subject/>
// when there is none). A join from a session already in the room resynchronizes it.
// Presence without the MUC element from a non-occupant gets the §7.2.23 kick (110, 307,
// 333). Errors from an occupant's JID that say it is gone (the router answers a stanza for
// a session that ended with service-unavailable) remove it with status 333 (§18.1.2).
//
// Real JIDs go to moderators only (semi-anonymous, the default) or to everyone
// (muc#roomconfig_whois = anyone), so a broadcast builds at most three variants of a
// presence: with the JID, without, and the self-presence.
//
// # Fan-out
//
// A groupchat message is turned once into the stanza every occupant gets: the client's
// start tag with 'from' set to the occupant JID, its children minus what only the room
// may write (occupant-id, a stanza-id by the room, muc#user data), then <stanza-id
// by=room/> and <occupant-id/>. Each recipient then costs one copy of those bytes with
// 'to' added at the end of the start tag (what xmlstream.SetAttrs writes, with the tag's
// end found once per message rather than once per recipient), into a shard scratch
// buffer, and one module.DirectRouter.RouteTo, which hands the router the parsed
// recipient so that it does not parse 'to' again. Nothing is allocated per recipient.
// BenchmarkFanout measures it (room alone, and end to end through the router).
//
// # History and archives
//
// Each room keeps its last muc#maxhistoryfetch messages (default 20, at most
// max_history) in a ring in memory, stored as reflected and stamped with <delay
// from=room/>; a joiner's <history/> (maxstanzas, maxchars, seconds, since) selects the
// smallest tail that meets every limit, whole stanzas only. The subject is not history.
// Archives (XEP-0313 for rooms, the mam module) plug in through SetArchive, one per
// server (keyed by its store). A room is archived when it is logged
// (muc#roomconfig_enablelogging, off for new rooms, announced with status 170): every
// message it reflects is handed to the Archive once, on the room's shard, under the
// stanza-id the occupants got; its disco#info lists the archive's namespaces; and the
// IQ requests of those namespaces addressed to the room go to the ArchiveQuerier with
// the requester's Access: occupants read; non-occupants only where they could join
// without anyone's leave (members of a members-only room, anyone in a public, open room
// without password); outcasts never; real JIDs only for those who see them in the room,
// admins and owners. An unlogged room answers service-unavailable and keeps what an
// earlier logged period archived. A room's archive is deleted when the room is destroyed
// or disappears with its last occupant, and when a room of that name is created (a
// temporary room's archive outlives a restart until then, or until retention).
//
// # Moderation
//
// A moderator retracts an occupant's message by the stanza-id the room gave it (XEP-0425,
// 0.3 and the 0.2 that older clients send inside a XEP-0422 <apply-to/>). The message's
// body and every child but its ids, delay and occupant-id give way to a <retracted/>
// tombstone, in the archive (a Retracter, the mam module's, which waits for the disk before
// the moderator's result) and in the history ring, so nobody who joins or reads the
// archive later gets the text. Every occupant gets the retraction from the room in both
// versions, and a logged room archives it, so a client that read the message before
// learns of the retraction when it catches up.
//
// An occupant's retraction of its own message (XEP-0424) is reflected and archived like any
// message, and the message it names becomes a tombstone too when its occupant-id is the
// retractor's. It names the message by the room's stanza-id, or, as Converse.js 14 does,
// by the id its client gave it, which the history ring turns into the stanza-id.
//
// # Mentions
//
// Members of a members-only room are not forgotten while away: a groupchat message that
// names a member (a nickname as a word of the body, or an XEP-0372 mention reference to
// the member's JID) is handed, once per named member with the member's sessions in the
// room, to the Notifier installed with SetNotifier (the push module's, XEP-0357), which
// decides on the member's shard whether it is awake in the room. Other rooms pay nothing.
//
// # Registration
//
// A user registers a nickname with a room through jabber:iq:register and the
// muc#register form (§7.10): the nickname is reserved (kept with the affiliation, the
// same record as the member list's 'nick') and the user is put on the member list (an
// admin or owner keeps that affiliation). Nobody else may enter under it or register it
// (conflict); the x-roomuser-item node answers it (§7.12). Outcasts are refused, and a
// members-only room takes registrations only from its members (registration-required).
// <remove/> gives the nickname up, with the membership of a member.
//
// # Service shutdown (332)
//
// When the server stops gracefully (SIGTERM, vireoctl shutdown, the XEP-0133 shutdown
// command) or a virtual host is removed while it runs (vireoctl vhost remove), the
// services going away (all of them, or the host's conference.<host>) learn it through
// module.Registrar.OnStop before any stream closes: each loaded room, on its own shard,
// removes every occupant and sends each of its sessions the occupant's unavailable
// self-presence with status 110 and 332 (§15.6; item role='none', the affiliation as it
// is, the real JID), as a kick does, but without telling the others of each departure
// (everyone leaves at once; n occupants would cost n² stanzas). Occupants on other
// servers, whose sessions outlive ours, get it over server-to-server: the engine waits
// (at most router.StopWait, 2 s) until the notices are delivered to local sessions and
// written to the outbound streams before it closes them. From then on the service refuses
// everything but errors, results and unavailable presence (service-unavailable). Rooms are
// not destroyed: a persistent room keeps its state and a temporary room's archive stays
// (as on any restart); a host added again gets a fresh service.
//
// # Persistence
//
// Persistent rooms keep their configuration, affiliations (with reserved nicknames) and
// subject in the module's "muc" table, written synchronously on the room's shard when
// they change; the directory of persistent rooms is read at startup and a room is loaded
// at its first stanza. History is not persisted by the room itself: a logged room whose
// archive is a HistorySource (the mam module's) fills its ring from the archive when it is
// loaded, so a persistent, logged room serves the same join history after a restart.
//
// # Bounds and flood control ([modules.muc])
//
//	max_rooms          rooms per service, live and persistent (10000); creating more
//	                   gets resource-constraint
//	default_occupants  maxusers of a new room (200)
//	max_occupants      the largest maxusers an owner may set, and the hard bound admins
//	                   and owners may fill a full room to (5000)
//	default_history    history length of a new room (20)
//	max_history        the largest history length an owner may set (200)
//	flood_occupants    room size from which flood control applies (200)
//	join_rate          joins per second such a room accepts, burst twice that (10);
//	                   beyond, resource-constraint of type wait (admins and owners pass)
//	presence_interval  the shortest interval between two broadcast availability changes
//	                   of one occupant of such a room ("5s"); the latest change is kept
//	                   for newcomers and the next broadcast
//
// Other bounds are constants: nickname 128 bytes, subject 4 KiB, presence payload 8 KiB,
// form values 1 KiB, 1000 items per #admin set, 10000 affiliations per room, 256 IQs
// relayed between occupants awaiting an answer per room.
//
// # Presence broadcast by role
//
// muc#roomconfig_presencebroadcast lists the roles whose presence the others get (all
// three by default). An occupant of another role is told its own presence (110) and the
// broadcast roles' on joining, and nobody hears of its joins, changes or exit; a role
// change that makes it quiet sends the others one unavailable presence, one that makes it
// heard sends its presence. For very large rooms, broadcasting moderators only turns the
// n² presence stanzas of filling a room into about n.
//
// The #traffic node (§6.7) lists the payload namespaces of the room's discussion history,
// to those who may read the room (archiveAccess).
package muc
