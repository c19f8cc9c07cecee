"""Set the avatar of coven@conference.<domain> (XEP-0486) with slixmpp's XEP-0054 plugin:
publish a vCard-temp with a PNG photo to the room's JID, then read the room's
muc#roominfo form with XEP-0030 and XEP-0128 and print its avatar hashes, fetch the room's vCard and
print the SHA-1 of the photo it holds. Used by TestIntegrationSlixmppRoomAvatar; exits
non-zero on failure."""
import base64
import hashlib

import slixmpp
from slixmpp.plugins.xep_0004 import Form

import slixrun

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        for p in ("xep_0004", "xep_0030", "xep_0054", "xep_0128"):
            self.register_plugin(p)
        self.add_event_handler("session_start", self.start)

    async def start(self, _):
        room = "coven@conference." + self.boundjid.domain
        vcard = self["xep_0054"].make_vcard()
        vcard["PHOTO"]["TYPE"] = "image/png"
        vcard["PHOTO"]["BINVAL"] = PNG
        await self["xep_0054"].publish_vcard(vcard, jid=room)
        print("PUBLISHED", hashlib.sha1(PNG).hexdigest(), flush=True)
        info = await self["xep_0030"].get_info(jid=room)
        for form in info["disco_info"]:
            if not isinstance(form, Form):
                continue
            hashes = form.get_values().get("muc#roominfo_avatarhash")
            if hashes:
                if isinstance(hashes, str):  # slixmpp joins a text-multi field's values
                    hashes = hashes.split("\n")
                print("INFO HASH", " ".join(hashes), flush=True)
        got = await self["xep_0054"].get_vcard(room)
        data = got["vcard_temp"]["PHOTO"]["BINVAL"]
        print("VCARD", got["vcard_temp"]["PHOTO"]["TYPE"], hashlib.sha1(data).hexdigest(), flush=True)
        self.ok = True
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
