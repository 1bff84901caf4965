"""Logs in to an IMAP server with SASL OAUTHBEARER (Python's imaplib, a client we did not write)
and selects INBOX. Usage: imap_login.py PORT USER TOKEN. Prints "OK <n> messages" or "NO <why>"."""

import imaplib
import sys

port, user, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
imap = imaplib.IMAP4("127.0.0.1", port)
challenges = []


def respond(challenge):
    # RFC 7628 §3.2.3: after the error challenge, the client answers with a single 0x01.
    if challenge:
        challenges.append(challenge.decode())
        return b"\x01"
    return f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


try:
    imap.authenticate("OAUTHBEARER", respond)
    status, data = imap.select("INBOX")
    print(f"OK {data[0].decode()} messages")
except imaplib.IMAP4.error as error:
    print(f"NO {error} {' '.join(challenges)}")
finally:
    imap.shutdown()
