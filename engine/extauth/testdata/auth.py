#!/usr/bin/python3
"""An external authentication program as a site would write one for ejabberd or
Prosody: the users and their passwords come from a file of "user@domain:password"
lines (the path in argv[1]), read at each request so that a test can change them.

It also manages the file as ejabberd's protocol allows: setpass, tryregister and
removeuser rewrite it. A user whose password is "locked" may not change it or be removed,
and tryregister refuses names beginning with "no".

For the tests, some passwords misbehave on purpose: "crash" exits, "slow" sleeps past
any timeout, "garbage" answers something that is not the protocol."""
import struct
import sys
import time


def users():
    out = {}
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                jid, _, pw = line.partition(":")
                out[jid] = pw
    return out


def save(all):
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for jid, pw in all.items():
            f.write(jid + ":" + pw + "\n")


def answer(ok):
    sys.stdout.buffer.write(struct.pack(">HH", 2, 1 if ok else 0))
    sys.stdout.buffer.flush()


while True:
    head = sys.stdin.buffer.read(2)
    if len(head) < 2:
        sys.exit(0)
    (n,) = struct.unpack(">H", head)
    req = sys.stdin.buffer.read(n).decode("utf-8")
    parts = req.split(":", 3)
    if parts[0] == "auth" and len(parts) == 4:
        user, domain, pw = parts[1], parts[2], parts[3]
        if pw == "crash":
            sys.exit(3)
        if pw == "slow":
            time.sleep(30)
        if pw == "garbage":
            sys.stdout.buffer.write(b"\x00\x02\x00\x07")
            sys.stdout.buffer.flush()
            continue
        answer(users().get(user + "@" + domain) == pw)
    elif parts[0] == "isuser" and len(parts) >= 3:
        answer(parts[1] + "@" + parts[2] in users())
    elif parts[0] in ("setpass", "tryregister") and len(parts) == 4:
        all, jid = users(), parts[1] + "@" + parts[2]
        if parts[0] == "setpass":
            ok = jid in all and all[jid] != "locked"
        else:
            ok = jid not in all and not parts[1].startswith("no")
        if ok:
            all[jid] = parts[3]
            save(all)
        answer(ok)
    elif parts[0] == "removeuser" and len(parts) >= 3:
        all, jid = users(), parts[1] + "@" + parts[2]
        ok = jid in all and all[jid] != "locked"
        if ok:
            del all[jid]
            save(all)
        answer(ok)
    else:
        print("unknown request " + parts[0], file=sys.stderr, flush=True)
        answer(False)
