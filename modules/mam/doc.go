// Package mam implements XEP-0313: Message Archive Management (urn:xmpp:mam:2 and
// urn:xmpp:mam:2#extended), with XEP-0059 result set management and the XEP-0441
// preferences, for user archives and for the archives of the rooms of the muc module.
//
// # What is archived, and when
//
// A chat or normal message with a <body/> or a <subject/>, an XEP-0334 <store/> hint, an
// end-to-end encrypted payload, an XEP-0353 call signal or a room invitation (archivable),
// without a <no-store/> or <no-permanent-store/> hint, is archived for both parties at the moment it
// is routed (§5.1.1): in the sender's archive in the outbound phase, on the sender's shard,
// and in the recipient's archive in the inbound phase, on the recipient's shard, both at
// OrderArchive, after blocking (a refused message is in no archive) and before carbon
// copies (which then carry the id a bodiless message gets here), delivery, push and
// offline storage. Chat states, receipts and markers alone, errors, headlines and
// groupchat messages (a room keeps its own archive) are not archived. A message to one's
// own account is archived once, when it arrives. The user's preferences (XEP-0441: a
// default of always, roster or never, and always/never JID lists, where never wins) decide
// per contact; [modules.mam] default is the policy of users who set none.
//
// An XEP-0424 retraction is archived with or without a body, and the message it names
// (by 'id' or origin-id, among the conversation's newest 50 of the last week, sent by the
// same party) becomes a tombstone in both archives: its ids and a <retracted/> with the
// retraction's id and time, nothing of what it said (retract.go).
//
// # Bind2
//
// An XEP-0386 login gets the §6 <metadata/> of the user's archive inside <bound/>, made on
// the user's shard as the session is bound (module.Registrar.Bound): the first and the
// last id at that instant, so a phone reconnecting knows what to fetch with no query of its
// own, and nothing archived after binding is missed (it arrives live).
//
// # Ids
//
// Archive ids are XEP-0359 stanza-ids (sid.ID: milliseconds, a sequence, and random bits
// fixed per process), strictly increasing within a process, so an id is also the row's
// position in time and the archive needs no separate id index. The recipient's copy is
// archived under the <stanza-id by='recipient'/> that the sid module stamped and that the
// recipient receives (§3.5), so a client can match live, offline and archived copies. Where
// sid stamped nothing (sid disabled, or a bodiless message with <store/>), this module
// removes any stanza-id by='recipient' the sender put there and stamps its own. The
// sender's copy gets a new id that the sender learns only from its archive: carbons run
// before the archive and do not carry it, and the recipient must not see it (§3.5). The
// delay stamp of a result and the 'start'/'end' filters use the id's millisecond.
//
// # Durability and cost
//
// A message and its index row are one atomic write, made before the hook returns, that is
// before the message is delivered, stored offline or answered. By default the write does
// not wait for the disk (store.Table.ApplyLazy): Pebble's log writer hands it to the
// kernel moments later, and the next synced write of the store makes it, and everything
// before it, safe from a crash and from power loss. Two synced writes close the window
// where it matters: an offline message (synced) follows its archive rows, and before the
// server answers an IQ the router syncs any lazy writes (store.LazySyncer), so an answer —
// a ping after a burst of messages — never acknowledges a message whose archive copy a
// crash could still take (the kill -9 fault test checks both). What a crash can take is
// the archive copy of a message delivered live moments before, with nothing acknowledged.
// [modules.mam] sync = true makes every archive write wait for the disk instead, at the
// price of the disk's flush latency in every message's path. BenchmarkArchive on the
// 2-core development VM: 15 µs per message lazily, 545 µs synced with one shard writing
// and 103 µs with 16 (Pebble commits concurrent syncs together); 15 allocations and about
// 1.1 KB either way. In the messaging bench (quick suite, loaded VM) synced archiving cut
// the rate at p99 ≤ 100 ms from 3,737 to 872 msgs/s. When an archive write fails (a full
// disk), the message is still delivered and the failure logged (at most once a minute):
// losing a copy in the archive is better than refusing to deliver while the live path
// still works.
//
// # Key layout
//
// In the "mam" table, every key starts with store.UserKey(user), so that deleting the
// account deletes its archive:
//
//	user 0 'a' id(12)                   -> version, direction, remote JID, message
//	user 0 'w' contact-bare 0 id(12)    -> the contact's resource
//	user 0 'p'                          -> preferences
//
// "One user, one contact, the latest N" is one descending range scan of the 'w' rows plus
// N point reads; a query without 'with' scans the 'a' rows. A full-JID 'with' filters the
// 'w' rows on their value.
//
// # Queries
//
// Results go to the querying session only, in archive order (or flipped within the page),
// in batches of 64 KiB that wait for the connection to write them, then the IQ result with
// <fin complete/> and the RSM first, last and count. A page holds at most max_page (250)
// messages, also when the client asks for more or gives no max. RSM before pages backwards
// (an empty before is the last page), after forwards; index skips from the start; before
// and after together bound one page. Ids that are not in the archive, or are past
// retention, are item-not-found; unknown form fields are feature-not-implemented. The
// count and first's index are given while the result set has at most CountLimit messages;
// an index past CountLimit gets an empty, complete page. Someone else's archive is
// forbidden. A session gets one page at a time: queries sent while a page is on its way
// wait their turn (at most 8; then resource-constraint). When a session detaches or ends
// with a page half sent, the rest of the page and the waiting queries are dropped and not
// answered: the client asks again.
//
// # Rooms
//
// The module installs a room archive into muc (muc.SetArchive, keyed by the server's
// store; mam imports muc, muc knows only its Archive interface). A room logged by its
// owner (muc#roomconfig_enablelogging) hands it every groupchat message it reflects, on
// the room's shard, and it is archived like a user's message, under
// store.UserKey(room's bare JID), with the room's <stanza-id/> (the id every occupant got)
// as the archive id, the occupant JID (room@service/nick) as the remote party (a 'with'
// of room@service/nick selects one nickname), and the sender's real bare JID in an
// <x xmlns='…muc#user'><item jid/></x> child (XEP-0313 §5.1.2 / XEP-0045 §7.2.4). Queries
// addressed to the room run the same query code and write the same results, from the
// room's bare JID, to whom muc allows (muc.Access: occupants; members of a members-only
// room; anyone for a public open room without password; others get forbidden); the
// item with the real JID is cut unless the requester sees real JIDs in the room now
// (non-anonymous room, moderators, admins, owners). The results are routed to the
// requester, on another shard, so a room's page cannot wait for the connection: it stops
// at RoomPageBytes (256 KiB) and says it is not complete. The archive of a room is
// deleted when the room is destroyed or disappears, and when a room of that name is
// created; a persistent room's archive survives restarts. Retention and the sweep apply
// to rooms as to users. The form and metadata are answered for rooms; preferences are
// not (feature-not-implemented).
//
// # Offline messages
//
// Offline storage (XEP-0160) is kept as it is: a message for a user with no available
// resource is archived and also stored offline, and delivered at the next login with the
// same stanza-id it has in the archive. Clients that sync from the archive deduplicate by
// that id (§5.1.1 allows, but does not require, skipping offline delivery for them; most
// servers deliver, and a client that does not speak MAM still gets its messages).
//
// # Retention and limits
//
// [modules.mam] retention ("0" forever, the default; a duration such as "720h" or "30d")
// hides older messages from every query at once, and a sweep every sweep_interval (1h)
// deletes them, user by user, at most 100,000 rows per sweep in writes of 256. The
// number of messages in one archive is not bounded: only retention bounds it. One archived
// message is bounded by the stanza size limit (256 KiB by default) plus a few bytes of
// header; preferences by MaxPrefsJIDs.
//
// Configuration, [modules.mam]: default = "always" | "roster" | "never"; max_page = 250;
// retention = "0"; sweep_interval = "1h".
package mam
