// Package upload implements XEP-0363: HTTP File Upload.
//
// It owns one service domain per virtual host (upload.<host>, [modules.upload] subdomain),
// listed in the server's disco#items, and an HTTPS listener of its own (net/http, with the
// certificates c2s serves). A local user of <host> asks upload.<host> for a slot:
//
//	<request xmlns='urn:xmpp:http:upload:0' filename='a.jpg' size='1234' content-type='image/jpeg'/>
//
// and gets a PUT URL with an Authorization header and a GET URL. The header carries an
// HMAC-SHA-256 over the slot (id, file name, size, content type, owner, expiry) keyed by
// data_dir/upload.key, made at first start and never stored in the database. The PUT must
// bring that header, exactly the announced size and content type, before the slot expires
// (slot_ttl); the slot is used up the moment its body starts to be read. Files live in
// data_dir/upload/<slot id>/<file name>, one random directory per slot, with a row per file
// in the store table "upload" (owner, name, type, size, time) from which the per-user quota
// is counted at start. A background sweep deletes files older than retention, and
// directories no row knows (a crash in the middle of a PUT).
//
// Checks, in the order a client meets them: only local users of the service's own host may
// ask (forbidden otherwise); a request without a usable file name, size or content type is
// bad-request; a file above max_file_size is not-acceptable with <file-too-large/> (XEP-0363
// §5); a file that would take the user's stored and reserved bytes over quota is
// resource-constraint (type wait). File names are cleaned (no path separators, control
// characters, leading dots or names longer than 255 bytes) before they reach a URL or the
// disk, and the HTTP side compares the path with the slot's own name and id, so nothing
// in a URL is ever joined to a path unchecked.
//
// GET serves the file with the type the uploader announced, Content-Disposition (inline
// for images, audio and video, attachment otherwise), nosniff and a sandboxing CSP, so an
// uploaded HTML page cannot run script under the server's origin. Every answer carries CORS
// headers for browser clients, and OPTIONS answers the preflight.
//
// What it must not do: block a shard worker (the slot request only touches memory; disk
// work happens on HTTP goroutines and the sweeper), trust a client's file name or path,
// or serve a file past its retention.
//
// Concurrency: the service handler runs on the shard of upload.<host>; HTTP handlers run
// on net/http goroutines. The pending slots and the per-user byte counts they share are in
// Mod.mu; everything else in Mod is read-only after Provision.
package upload
