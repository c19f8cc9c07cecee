"""What the slixmpp test scripts share: trusting the test server's certificate, and a main
that connects with STARTTLS, waits (bounded) for the script to disconnect, and exits 0 only
when the script set client.ok. Scripts are run as `python3 testdata/NAME.py JID PASSWORD
HOST PORT CAFILE [EXTRA...]` by engine/*_test.go."""
import asyncio
import logging
import os
import ssl
import sys


def trust(client, cafile):
    """Make client verify the server against cafile, host name included."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    client.ssl_context = ctx


def run(make_client, timeout):
    """make_client(jid, password, cafile, extra_args) builds the client; SLIX_LOG=DEBUG
    shows the stream."""
    jid, password, host, port, cafile = sys.argv[1:6]
    logging.basicConfig(level=getattr(logging, os.environ.get("SLIX_LOG", "ERROR")))
    c = make_client(jid, password, cafile, sys.argv[6:])
    c.connect(address=(host, int(port)), force_starttls=True)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, timeout))
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
    sys.exit(0 if c.ok else 1)
