"""What the aioxmpp test scripts share: the server's address and the certificate to trust
(the first three arguments), clients that connect there over STARTTLS checking the
certificate, and a main that runs bounded and exits non-zero on failure. Scripts are run as
`python3 testdata/NAME.py HOST PORT CAFILE [ARGS...]` by engine/aioxmpp_test.go;
AIOXMPP_LOG=DEBUG shows the streams."""
import asyncio
import logging
import os
import sys

import aioxmpp
import aioxmpp.connector
import aioxmpp.security_layer

HOST, PORT, CAFILE = None, None, None


def say(*words):
    print(*words, flush=True)


async def wait_until(cond, what, timeout=15):
    """Waits until cond() holds, or raises TimeoutError naming what."""
    for _ in range(int(timeout * 20)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


def peer():
    """The connection options that point aioxmpp at the test server."""
    return [(HOST, int(PORT), aioxmpp.connector.STARTTLSConnector())]


_preauth_iq = False


async def preauth(stream, me, token):
    """Presents an invitation's token on stream before registering (XEP-0445 <preauth/>,
    aioxmpp's XEP-0379 element sent as an IQ payload); fails if the server refuses it."""
    import aioxmpp.misc.pars
    import aioxmpp.protocol
    global _preauth_iq
    if not _preauth_iq:
        aioxmpp.IQ.as_payload_class(aioxmpp.misc.pars.Preauth)
        _preauth_iq = True
    iq = aioxmpp.IQ(to=aioxmpp.JID.fromstr(me.domain), type_=aioxmpp.IQType.SET,
                    payload=aioxmpp.misc.pars.Preauth())
    iq.payload.token = token
    iq.autoset_id()
    await aioxmpp.protocol.send_and_wait_for(stream, [iq], [aioxmpp.IQ], timeout=10)


def security_layer(password):
    """SASL with password (None: none) over TLS that trusts only the test certificate;
    aioxmpp's PKIX verifier also checks the host name against the JID's domain."""

    def ssl_context():
        ctx = aioxmpp.security_layer.default_ssl_context()
        ctx.load_verify_locations(CAFILE)
        return ctx

    return aioxmpp.make_security_layer(password, ssl_context_factory=ssl_context)


def client(jid, password, **kwargs):
    """An aioxmpp.Client for jid on the test server."""
    return aioxmpp.Client(aioxmpp.JID.fromstr(jid), security_layer(password), override_peer=peer(), **kwargs)


def run(main, timeout=60):
    """Runs main(*ARGS) for at most timeout seconds; exits 1 if it raises or returns False.
    A failure prints FAILED with the reason."""
    global HOST, PORT, CAFILE
    HOST, PORT, CAFILE = sys.argv[1:4]
    # CRITICAL by default: resets that tests cause on purpose are logged as errors.
    logging.basicConfig(level=getattr(logging, os.environ.get("AIOXMPP_LOG", "CRITICAL")))
    try:
        ok = asyncio.run(asyncio.wait_for(main(*sys.argv[4:]), timeout))
    except Exception as e:
        say("FAILED", type(e).__name__, e)
        sys.exit(1)
    sys.exit(1 if ok is False else 0)
