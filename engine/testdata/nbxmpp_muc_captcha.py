"""Read a MUC CAPTCHA challenge the way Gajim does, with nbxmpp's code (the handler of
nbxmpp.modules.captcha: the data form under <captcha xmlns='urn:xmpp:captcha'/>, and the
XEP-0231 image checked against its cid), fill in argv[1] as the text and print the IQ
nbxmpp.modules.muc sends to the room (make_captcha_request, with the whole form, as
Gajim submits it). The challenge message is on standard input. Prints one line per step;
used by TestIntegrationNbxmppMucCaptcha."""
import sys

from nbxmpp.modules.bits_of_binary import parse_bob_data
from nbxmpp.modules.dataforms import extend_form
from nbxmpp.modules.muc.util import make_captcha_request
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import Message
from nbxmpp.simplexml import NodeBuilder


def main():
    answer = sys.argv[1]
    stanza = Message(node=NodeBuilder(sys.stdin.read()).getDom())
    captcha = stanza.getTag("captcha", namespace=Namespace.CAPTCHA)
    form = extend_form(node=captcha.getTag("x", namespace=Namespace.DATA))
    print("FORM", form["FORM_TYPE"].value, form["challenge"].required, form["ocr"].required, flush=True)
    bob = parse_bob_data(stanza)
    print("BOB", bob.type, bob.cid.startswith("sha1+"), bob.data[:4] == b"\x89PNG", flush=True)
    form["ocr"].value = answer
    form.type_ = "submit"
    iq = make_captcha_request(stanza.getFrom(), form)
    iq.setID("nbc1")
    print("SUBMIT", str(iq).replace("\n", ""), flush=True)


if __name__ == "__main__":
    main()
