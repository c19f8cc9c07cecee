"""Upload a file with slixmpp's XEP-0363 plugin: it finds the service through disco
(identity store/file, max-file-size), asks for a slot and PUTs over HTTPS with aiohttp.
Prints the GET URL for TestIntegrationSlixmppUpload to fetch; a file above the advertised
limit must be refused by the plugin before any slot is asked for. Exits non-zero on
failure."""
import asyncio
import io
import ssl

import aiohttp
import slixmpp
from slixmpp.plugins.xep_0363 import http_upload

import slixrun

DATA = "Grüße from slixmpp\n".encode() * 10


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        # The plugin's aiohttp session must trust the test certificate too.
        ctx = ssl.create_default_context(cafile=cafile)
        http_upload.ClientSession = lambda *a, **kw: aiohttp.ClientSession(
            *a, connector=aiohttp.TCPConnector(ssl=ctx), **kw)
        for p in ("xep_0030", "xep_0128", "xep_0363"):
            self.register_plugin(p)
        self.add_event_handler("session_start", self.start)

    async def disco_domain(self):
        """What XEP_0030.get_info_from_domain caches, which the upload plugin reads: that
        method passes coroutines to asyncio.wait, which Python 3.11 refuses (slixmpp 1.8.3),
        so the same queries are made here and the plugin finds them in the cache."""
        d = self["xep_0030"]
        domain = self.boundjid.domain
        items = await d.get_items(domain, timeout=10)
        infos = await asyncio.gather(d.get_info(domain, timeout=10),
                                     *[d.get_info(i[0], timeout=10) for i in items["disco_items"]["items"]])
        d.domain_infos[domain] = list(infos)

    async def start(self, _):
        print("BOUND", self.boundjid.full, flush=True)
        try:
            await self.disco_domain()
            url = await self["xep_0363"].upload_file(
                "slix note.txt", size=len(DATA), content_type="text/plain; charset=utf-8",
                input_file=io.BytesIO(DATA), timeout=10)
            print("URL", url, flush=True)
            print("SERVICE", self["xep_0363"].upload_service, self["xep_0363"].max_file_size, flush=True)
            try:
                await self["xep_0363"].upload_file(
                    "big.bin", size=self["xep_0363"].max_file_size + 1,
                    input_file=io.BytesIO(b""), timeout=10)
                print("BIG ACCEPTED", flush=True)
            except http_upload.FileTooBig:
                print("TOO BIG", flush=True)
            self.ok = True
        except Exception as e:  # report and fail
            print("ERROR", type(e).__name__, e, flush=True)
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
