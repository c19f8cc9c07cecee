"""Send a file through the server's XEP-0065 proxy with slixmpp's plugin, which only
knows mediated (proxy) connections: the sender finds the proxy through disco (an item of
the server with the identity proxy/bytestreams), asks it for its address, offers it to the
receiver (a second slixmpp client in this process), connects and activates; the receiver
connects as the target. The receiver answers with the SHA-1 of what it got, over the same
stream, and sees the stream end when the sender closes. Run as slixrun does, with the
receiver's JID and password as extra arguments. Exits non-zero on failure."""
import asyncio
import hashlib
import sys

import slixmpp

import slixrun

DATA = bytes(range(256)) * 4096 + b"end"  # 1 MiB and a bit


class Receiver(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        slixrun.trust(self, cafile)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0065", {"auto_accept": True})
        self.got = bytearray()
        self.conn = None
        self.ready = asyncio.get_event_loop().create_future()
        self.closed = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.ready.set_result(True))
        self.add_event_handler("socks5_stream", self.stream)
        self.add_event_handler("socks5_data", self.data)
        self.add_event_handler("socks5_closed", lambda _: self.closed.done() or self.closed.set_result(True))

    def stream(self, conn):
        self.conn = conn

    def data(self, d):
        self.got.extend(d)
        if len(self.got) == len(DATA):
            asyncio.ensure_future(self.conn.write(b"GOT " + hashlib.sha1(self.got).hexdigest().encode()))


class Sender(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile, receiver):
        super().__init__(jid, password)
        slixrun.trust(self, cafile)
        self.receiver = receiver
        self.ok = False
        self.reply = asyncio.get_event_loop().create_future()
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0065")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("socks5_data", lambda d: self.reply.done() or self.reply.set_result(bytes(d)))

    async def start(self, _):
        print("BOUND", self.boundjid.full, flush=True)
        try:
            await asyncio.wait_for(self.receiver.ready, 10)
            proxies = await self["xep_0065"].discover_proxies(timeout=10)
            for jid, (host, port) in proxies.items():
                print("PROXY", jid, host, port, flush=True)
            sock = await self["xep_0065"].handshake(self.receiver.boundjid.full, timeout=10)
            if sock is None:
                raise RuntimeError("no bytestream")
            print("ACTIVATED", flush=True)
            await sock.write(DATA)
            reply = await asyncio.wait_for(self.reply, 20)
            print("REPLY", reply.decode(), flush=True)
            print("WANT GOT", hashlib.sha1(DATA).hexdigest(), flush=True)
            sock.transport.close()
            await asyncio.wait_for(self.receiver.closed, 10)
            print("RECEIVER SAW THE END", len(self.receiver.got), flush=True)
            self.ok = reply.decode() == "GOT " + hashlib.sha1(DATA).hexdigest()
        except Exception as e:  # report and fail
            print("ERROR", type(e).__name__, e, flush=True)
        self.receiver.disconnect()
        self.disconnect()


def main():
    rjid, rpass = sys.argv[6:8]
    cafile = sys.argv[5]
    host, port = sys.argv[3], int(sys.argv[4])
    receiver = Receiver(rjid, rpass, cafile)
    receiver.connect(address=(host, port), force_starttls=True)
    slixrun.run(lambda jid, password, ca, _: Sender(jid, password, ca, receiver), 40)


if __name__ == "__main__":
    main()
