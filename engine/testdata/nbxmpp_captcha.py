"""Read a registration form with CAPTCHA the way Gajim does, with nbxmpp's XEP-0077 code
(nbxmpp.modules.register.util: the data form, and the XEP-0231 image checked against its
cid), then fill it in and print the IQ nbxmpp would send. The server's answer to the
form's get is on standard input; the text to type is argv[1], the account argv[2] and its
password argv[3]. Prints one line per step; used by TestIntegrationNbxmppCaptcha."""
import sys

from nbxmpp.modules.register.util import _make_register_form, _parse_register_data
from nbxmpp.protocol import Iq
from nbxmpp.simplexml import NodeBuilder


def main():
    answer, user, password = sys.argv[1:4]
    node = NodeBuilder(sys.stdin.read()).getDom()
    data = _parse_register_data(Iq(node=node))
    form = data.form
    print("FORM", form["FORM_TYPE"].value, flush=True)
    bob = data.bob_data
    print("BOB", bob.type, bob.cid.startswith("sha1+"), len(bob.data) > 1000, bob.data[:4] == b"\x89PNG", flush=True)
    print("OCR", form["ocr"].required, flush=True)
    form["username"].value = user
    form["password"].value = password
    form["ocr"].value = answer
    form.type_ = "submit"
    iq = _make_register_form("localhost", form)
    iq.setID("nb1")
    print("SUBMIT", str(iq).replace("\n", ""), flush=True)


if __name__ == "__main__":
    main()
