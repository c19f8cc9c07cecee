// Package proxy65 implements the proxy of XEP-0065: SOCKS5 Bytestreams, the relay that
// file transfers fall back to when the two clients cannot reach each other (Jingle SOCKS5,
// XEP-0260, uses it the same way).
//
// It owns one service domain per virtual host (proxy.<host>, [modules.proxy65] subdomain),
// listed in the server's disco#items with the identity proxy/bytestreams, and a TCP
// listener of its own that speaks the part of SOCKS5 (RFC 1928) the XEP uses: no
// authentication, CONNECT to a DOMAINNAME that is the stream's hash,
// SHA1(SID + requester JID + target JID) in hexadecimal. A client asks the service where
// the listener is:
//
//	<query xmlns='http://jabber.org/protocol/bytestreams'/>
//
// and gets <streamhost jid='proxy.<host>' host=… port=…/>. Both parties connect and name
// the same hash; the requester then sends <activate>target</activate> with the stream's
// sid, the proxy finds the pair by SHA1(sid + the IQ's 'from' + target), and from then on
// copies bytes both ways until either side closes (a half-close is passed on, so a sender
// that finishes its file lets the receiver see the end of it).
//
// Checks: only users of this server's hosts may ask for the address or activate (forbidden
// otherwise, unless allow_remote); a third connection with a hash that has two is refused
// at the SOCKS5 level; activation with an unknown hash is item-not-found and with only one
// side connected not-allowed (XEP-0065 §6.3.5). Limits, each with a default that a busy
// community server can keep: connections waiting for activation (max_pending in all, 32 per
// client address, two minutes each), the SOCKS5 greeting (10 seconds), streams relaying at
// once (max_streams, and max_streams_per_user per activating account), and optionally
// bytes per second per direction (max_rate).
//
// What it must not do: look at or keep what it relays; read a waiting connection before
// activation (bytes sent early stay in the kernel and are relayed once the stream is
// active, so none is lost to a client that writes right after its activate); block a shard
// worker (the IQ handlers only touch the maps under Mod.mu; sockets have goroutines of
// their own).
package proxy65
