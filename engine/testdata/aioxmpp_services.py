"""aioxmpp's service clients against Vireo, one step at a time: each prints "OK <step>"
or "FAIL <step>: <why>". aioxmpp parses every stanza into typed objects and validates
them, so a step fails on a malformed answer as well as on a wrong one. Used by
TestIntegrationAioxmppServices, which checks that every step is OK and plays bob.

Run as: python3 testdata/aioxmpp_services.py HOST PORT CAFILE JID PASSWORD"""
import asyncio

import aioxmpp
import aioxmpp.adhoc
import aioxmpp.avatar
import aioxmpp.blocking
import aioxmpp.bookmarks
import aioxmpp.carbons
import aioxmpp.disco
import aioxmpp.forms
import aioxmpp.httpupload
import aioxmpp.muc
import aioxmpp.ping
import aioxmpp.private_xml
import aioxmpp.pubsub
import aioxmpp.vcard
import aioxmpp.version
import aioxmpp.xso

import aiorun
from aiorun import say


@aioxmpp.pubsub.xso.as_payload_class
class Note(aioxmpp.xso.XSO):
    TAG = ("urn:example:note", "note")
    text = aioxmpp.xso.Text()


async def main(jid, password):
    me = aioxmpp.JID.fromstr(jid)
    server = aioxmpp.JID.fromstr(me.domain)
    bob = aioxmpp.JID.fromstr("bob@" + me.domain)
    room_jid = aioxmpp.JID.fromstr("tea@conference." + me.domain)
    client = aiorun.client(jid, password)
    failed = []
    # Services summoned before the stream comes up fetch their initial state with it
    # (the block list, for one).
    disco = client.summon(aioxmpp.DiscoClient)
    blocking_client = client.summon(aioxmpp.BlockingClient)
    mc = client.summon(aioxmpp.MUCClient)

    async def step(name, coro):
        try:
            res = await asyncio.wait_for(coro, 15)
            say("OK", name)
            return res
        except Exception as e:  # every failure is reported, and the run goes on
            failed.append(name)
            say("FAIL", name + ":", type(e).__name__, e)
            return None

    async with client.connected(presence=aioxmpp.PresenceState(True)) as stream:

        async def server_info():
            info = await disco.query_info(server)
            for need in ("urn:xmpp:carbons:2", "urn:xmpp:blocking", "urn:xmpp:ping", "vcard-temp"):
                assert need in info.features, need + " not in " + repr(sorted(info.features))

        await step("disco#info server", server_info())

        async def server_items():
            items = await disco.query_items(server)
            jids = {str(i.jid) for i in items.items}
            assert "conference." + me.domain in jids, jids
            assert "upload." + me.domain in jids, jids

        await step("disco#items server", server_items())
        await step("ping", aioxmpp.ping.ping(client, server))

        async def version():
            v = await aioxmpp.version.query_version(stream, server)
            assert v.name, v

        await step("software version", version())
        await step("carbons enable", client.summon(aioxmpp.CarbonsClient).enable())

        async def blocking():
            bc = blocking_client
            for _ in range(50):  # the initial list arrives right after the stream is up
                if bc.blocklist is not None:
                    break
                await asyncio.sleep(0.1)
            await bc.block_jids([aioxmpp.JID.fromstr("spam@example.org")])
            await asyncio.sleep(0.2)
            assert aioxmpp.JID.fromstr("spam@example.org") in bc.blocklist, bc.blocklist
            await bc.unblock_jids([aioxmpp.JID.fromstr("spam@example.org")])

        await step("blocking", blocking())

        async def vcard():
            vc = client.summon(aioxmpp.vcard.VCardService)
            card = await vc.get_vcard()
            await vc.set_vcard(card)
            await vc.get_vcard(bob)

        await step("vcard-temp", vcard())

        async def private_xml():
            bm = client.summon(aioxmpp.BookmarkClient)
            await bm.add_bookmark(aioxmpp.bookmarks.Conference("Tea", room_jid, autojoin=False, nick="al"))
            got = await bm.get_bookmarks()
            assert any(b.jid == room_jid for b in got), got

        await step("bookmarks (private XML)", private_xml())

        async def avatar():
            av = client.summon(aioxmpp.avatar.AvatarService)
            aset = aioxmpp.avatar.AvatarSet()
            aset.add_avatar_image("image/png", image_bytes=b"\x89PNG\r\n\x1a\nnot really a png")
            await av.publish_avatar_set(aset)
            got = await av.get_avatar_metadata(me)
            assert got, got

        await step("avatar (PEP)", avatar())

        async def upload():
            slot = await aioxmpp.httpupload.request_slot(
                client, aioxmpp.JID.fromstr("upload." + me.domain), "a.txt", 10, "text/plain")
            assert slot.put.url.startswith("https://"), slot.put.url
            assert slot.get.url.startswith("https://"), slot.get.url

        await step("http upload slot", upload())

        async def adhoc():
            ac = client.summon(aioxmpp.AdHocClient)
            cmds = await ac.get_commands(server)
            say("COMMANDS", len(cmds))

        await step("ad-hoc commands list", adhoc())

        async def muc():
            room, fut = mc.join(room_jid, "al")
            await fut
            heard = asyncio.get_event_loop().create_future()

            def on_message(msg, member, source, **kw):
                if msg.body and msg.body.any() == "hi al" and not heard.done():
                    heard.set_result(True)

            room.on_message.connect(on_message)
            say("JOINED", room.me.nick, room.me.affiliation, room.me.role)
            msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
            msg.body[None] = "tea anyone"
            await room.send_message(msg)
            await heard
            await room.leave()

        await step("muc", muc())

        async def muc_owner():
            own = aioxmpp.JID.fromstr("al-room@conference." + me.domain)
            room, fut = mc.join(own, "al")
            await fut
            assert room.me.affiliation == "owner", room.me.affiliation
            form = await mc.get_room_config(own)
            fields = {f.var for f in form.fields}
            assert "muc#roomconfig_persistentroom" in fields, fields
            form.type_ = aioxmpp.forms.DataType.SUBMIT  # accept it as it is
            await mc.set_room_config(own, form)
            await room.leave()

        await step("muc owner", muc_owner())

        async def pubsub():
            ps = client.summon(aioxmpp.PubSubClient)
            svc = aioxmpp.JID.fromstr("pubsub." + me.domain)
            node = await ps.create(svc, "aio-news")
            await ps.subscribe(svc, node)
            note = Note()
            note.text = "news from aioxmpp"
            await ps.publish(svc, node, note, id_="first")
            items = await ps.get_items(svc, node)
            got = [i.registered_payload.text for i in items.payload.items if i.registered_payload]
            assert got == ["news from aioxmpp"], got
            await ps.delete(svc, node)

        await step("pubsub", pubsub())

    say("DONE", len(failed), "failed")
    return not failed


if __name__ == "__main__":
    aiorun.run(main, 120)
