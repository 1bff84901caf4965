"""Clients we did not write (Python's imaplib, smtplib, poplib, and raw sockets where a client's
habit must be reproduced byte for byte) against Letterlock's IMAP, SMTP and POP3 front doors.

Usage: front_doors.py SCENARIO JSON-PARAMETERS
Prints one JSON object with what it saw; exits non-zero when something unexpected happens.
"""

import base64
import html.parser
import imaplib
import json
import poplib
import smtplib
import socket
import sys
import time

import requests


def oauthbearer(user, token, port):
    return f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def xoauth2(user, token):
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def b64(data):
    return base64.b64encode(data).decode()


def imap_login(port, user, token, mechanism="OAUTHBEARER"):
    """imaplib with one mechanism; returns (imap, challenges)."""
    imap = imaplib.IMAP4("127.0.0.1", port)
    challenges = []

    def respond(challenge):
        if challenge:
            challenges.append(challenge.decode())
            return b"\x01" if mechanism == "OAUTHBEARER" else b""
        if mechanism == "OAUTHBEARER":
            return oauthbearer(user, token, port)
        return xoauth2(user, token)

    imap.authenticate(mechanism, respond)
    return imap, challenges


def imap_failure(port, user, token, mechanism="OAUTHBEARER"):
    """Logs in expecting failure; returns the error text and the challenge JSON."""
    challenges = []
    imap = imaplib.IMAP4("127.0.0.1", port)

    def respond(challenge):
        if challenge:
            challenges.append(json.loads(challenge))
            return b"\x01" if mechanism == "OAUTHBEARER" else b""
        if mechanism == "OAUTHBEARER":
            return oauthbearer(user, token, port)
        return xoauth2(user, token)

    try:
        imap.authenticate(mechanism, respond)
    except imaplib.IMAP4.error as error:
        return {"error": str(error), "challenges": challenges}
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass
    raise AssertionError("the login succeeded")


class Raw:
    """A line-level IMAP/SMTP/POP3 conversation over a plain socket (from `source`, a loopback
    address, when given)."""

    def __init__(self, port, timeout=10, source=None):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None)
        self.buffer = b""

    def line(self):
        while b"\n" not in self.buffer:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise EOFError(self.buffer.decode(errors="replace"))
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def send(self, text):
        self.socket.sendall(text.encode() if isinstance(text, str) else text)

    def until(self, prefix):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(prefix):
                return lines

    def closed(self):
        """True if the server closed the connection (after what it still sent)."""
        try:
            while True:
                chunk = self.socket.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def imap(p):
    port, user, token = p["imap"], p["user"], p["token"]
    seen = {}
    # A good login with imaplib (OAUTHBEARER and XOAUTH2), then real work through the proxy:
    # APPEND with a literal, SELECT, FETCH.
    client, _ = imap_login(port, user, token, "OAUTHBEARER")
    seen["capabilities_after_login"] = client.capability()[1][0].decode()
    message = b"From: ann@example.com\r\nSubject: through the front door\r\n\r\n" + b"x" * 200_000 + b"\r\n"
    status, _ = client.append("INBOX", None, None, message)
    seen["append"] = status
    status, data = client.select("INBOX")
    seen["select"] = [status, data[0].decode()]
    status, data = client.fetch("1", "(BODY.PEEK[])")
    seen["fetched_bytes"] = len(data[0][1])
    client.logout()
    client, _ = imap_login(port, user, token, "XOAUTH2")
    seen["xoauth2"] = client.select("INBOX")[0]
    client.logout()

    # The greeting and CAPABILITY before login.
    raw = Raw(port)
    seen["greeting"] = raw.line()
    raw.send("c1 CAPABILITY\r\n")
    seen["capability"] = raw.until("c1 ")
    raw.send("c2 LOGIN ann secret\r\n")
    seen["login"] = raw.line()
    raw.send("c3 SELECT INBOX\r\n")
    seen["select_before_login"] = raw.line()
    # LOGIN with literals is read whole and refused; the connection stays in step.
    raw.send("c4 LOGIN {3}\r\n")
    seen["literal_continuation"] = raw.line()
    raw.send("ann {6}\r\n")
    raw.line()
    raw.send("secret\r\n")
    seen["login_literal"] = raw.line()

    # The empty-token probe: the challenge says where to get a token.
    raw.send(f"p1 AUTHENTICATE OAUTHBEARER {b64(oauthbearer(user, '', port))}\r\n")
    challenge = raw.line()
    seen["probe_challenge"] = json.loads(base64.b64decode(challenge[2:]))
    raw.send("AQ==\r\n")
    seen["probe_result"] = raw.line()

    # Continuation form (no SASL-IR), a token over 8 KiB that does not verify, and `*`.
    raw.send("p2 AUTHENTICATE OAUTHBEARER\r\n")
    seen["continuation"] = raw.line()
    raw.send(b64(oauthbearer(user, "A" * 9000, port)) + "\r\n")
    seen["long_token_challenge"] = json.loads(base64.b64decode(raw.line()[2:]))["status"]
    raw.send("AQ==\r\n")
    seen["long_token_result"] = raw.line()
    raw.send("p3 AUTHENTICATE XOAUTH2\r\n")
    raw.line()
    raw.send("*\r\n")
    seen["cancel"] = raw.line()

    # Thunderbird: XOAUTH2 on the command line; after the `+` error challenge it sends the
    # whole command again; then it gives up with an empty line.
    bad = b64(xoauth2(user, "expired.or.wrong"))
    raw.send(f"t1 AUTHENTICATE XOAUTH2 {bad}\r\n")
    seen["thunderbird_challenge"] = json.loads(base64.b64decode(raw.line()[2:]))
    raw.send(f"t1 AUTHENTICATE XOAUTH2 {bad}\r\n")
    seen["thunderbird_first"] = raw.line()
    seen["thunderbird_second_challenge"] = raw.line()[:2]
    raw.send("\r\n")
    seen["thunderbird_second"] = raw.line()
    # ... and it still logs in afterwards on the same connection.
    raw.send(f"t2 AUTHENTICATE XOAUTH2 {b64(xoauth2(user, token))}\r\n")
    seen["thunderbird_good"] = raw.line()
    raw.send("t3 LOGOUT\r\n")
    seen["logout"] = raw.until("t3 ")
    return seen


def forged(token):
    """Tokens with the claims of a real one: unsigned (alg none), signed by a key the issuer
    never had under the real kid, and under an unknown kid."""
    import warnings

    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt

    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header_part, payload_part, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload_part + "=="))
    key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
    return {
        "alg_none": part({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}) + "." + payload_part + ".",
        "forged_signature": jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": header["kid"]}, claims, key).decode(),
        "unknown_key": jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "not-a-key"}, claims, key).decode(),
        # Issue 14 (log injection): a kid that would write a line of its own into the log.
        "forged_log_line": jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "x\r\nFORGED-LINE peer=198.51.100.7:1"}, claims, key).decode(),
    }


def bad_input(p):
    port, user = p["imap"], p["user"]
    seen = {}
    p["tokens"].update(forged(p["token"]))
    cases = {
        "garbage_base64": "!!!not base64!!!",
        "channel_binding": b64(b"p=tls-unique,a=x,\x01auth=Bearer abc\x01\x01"),
        "bad_escape": b64(b"n,a=ann=2Xexample.com,\x01auth=Bearer abc\x01\x01"),
        "missing_auth": b64(b"n,,\x01host=127.0.0.1\x01\x01"),
        "basic_scheme": b64(b"n,,\x01auth=Basic YW5uOnNlY3JldA==\x01\x01"),
    }
    raw = Raw(port)
    raw.line()
    for name, response in cases.items():
        raw.send(f"{name} AUTHENTICATE OAUTHBEARER {response}\r\n")
        seen[name] = raw.line()
    for name, token in p["tokens"].items():
        raw.send(f"{name} AUTHENTICATE OAUTHBEARER {b64(oauthbearer(user, token, port))}\r\n")
        line = raw.line()
        if line.startswith("+ "):
            seen[name] = {"challenge": json.loads(base64.b64decode(line[2:]))}
            raw.send("AQ==\r\n")
            seen[name]["result"] = raw.line()
        else:
            seen[name] = {"result": line}
    # RFC 7628 §3.2: a client that says it connected to another host or port is refused.
    for name, host, other_port in [("other_host", "mail.other.example", port), ("other_port", "127.0.0.1", 1)]:
        response = f"n,a={user},\x01host={host}\x01port={other_port}\x01auth=Bearer {p['token']}\x01\x01".encode()
        raw.send(f"{name} AUTHENTICATE OAUTHBEARER {b64(response)}\r\n")
        raw.line()
        raw.send("AQ==\r\n")
        seen[name] = raw.line()
    # The authorization identity must be the token's subject.
    raw.send(f"authzid AUTHENTICATE OAUTHBEARER {b64(oauthbearer('mallory@example.com', p['token'], port))}\r\n")
    raw.line()
    raw.send("AQ==\r\n")
    seen["other_authzid"] = raw.line()
    raw.send("n NOOP\r\n")
    seen["still_sane"] = raw.line()

    # A 1 MiB line: refused, connection closed.
    raw = Raw(port)
    raw.line()
    try:
        raw.send("x AUTHENTICATE OAUTHBEARER " + "A" * (1024 * 1024) + "\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        seen["huge_line"] = raw.line()
    except (EOFError, ConnectionResetError) as error:
        seen["huge_line"] = f"closed: {error}"
    seen["huge_line_closed"] = raw.closed()

    # A client that never finishes AUTHENTICATE is logged out.
    raw = Raw(port, timeout=30)
    raw.line()
    raw.send("s AUTHENTICATE OAUTHBEARER\r\n")
    raw.line()
    seen["stalled"] = raw.line()
    seen["stalled_closed"] = raw.closed()

    # Many connections from one address: the ones over the limit are closed at once.
    sockets, refused = [], 0
    for _ in range(p["connections"]):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        sockets.append(s)
    for s in sockets:
        try:
            data = s.recv(100)
            if not data:
                refused += 1
        except (ConnectionResetError, socket.timeout):
            refused += 1
    for s in sockets:
        s.close()
    seen["connections_refused"] = refused
    time.sleep(0.5)
    raw = Raw(port)
    seen["after_flood"] = raw.line()[:4]
    return seen


def smtp(p):
    port, user, token = p["smtp"], p["user"], p["token"]
    seen = {}
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    code, text = client.ehlo("client.example")
    seen["ehlo"] = text.decode()
    code, text = client.docmd("MAIL", "FROM:<x@example.com>")
    seen["mail_before_auth"] = code
    code, text = client.docmd("AUTH", f"OAUTHBEARER {b64(oauthbearer(user, 'bad.token.here', port))}")
    seen["failure_challenge"] = json.loads(base64.b64decode(text)) if code == 334 else text.decode()
    code, text = client.docmd("AQ==")
    seen["failure"] = [code, text.decode()]
    code, text = client.docmd("AUTH", f"XOAUTH2 {b64(xoauth2(user, token))}")
    seen["auth"] = [code, text.decode()]
    client.sendmail(user, ["bob@example.com"], f"From: {user}\r\nTo: bob@example.com\r\nSubject: {p['subject']}\r\n\r\nHello through the front door.\r\n")
    client.quit()
    seen["sent"] = True
    return seen


def lockout(p):
    """Issue 14, point 3: a stranger at one address fails again and again in the user's name
    (`a=` and `user=` with junk tokens); the user, from another address, still logs in."""
    port, user, token = p["imap"], p["user"], p["token"]
    seen = {"attack": []}
    raw = Raw(port, source=p["attacker"])
    raw.line()
    for attempt in range(p["attempts"]):
        junk = oauthbearer(user, f"junk.token.{attempt}", port) if attempt % 2 else xoauth2(user, f"junk.{attempt}")
        mechanism = "OAUTHBEARER" if attempt % 2 else "XOAUTH2"
        raw.send(f"a{attempt} AUTHENTICATE {mechanism} {b64(junk)}\r\n")
        line = raw.line()
        if line.startswith("+ "):
            raw.send("AQ==\r\n" if mechanism == "OAUTHBEARER" else "\r\n")
            line = raw.line()
        seen["attack"].append(line.split(" ")[1])
    victim = Raw(port, source=p["victim"])
    victim.line()
    victim.send(f"v AUTHENTICATE OAUTHBEARER {b64(oauthbearer(user, token, port))}\r\n")
    seen["victim"] = victim.line()
    return seen


def smtp_smuggling(p):
    """Issue 14, point 1: after logging in through the door with their own token, a client tries
    to become someone else at the back end (XCLIENT LOGIN=, XFORWARD, a second AUTH), alone and
    pipelined behind other commands and after a refused DATA, and then sends mail. Records every
    reply in order."""
    port, user, token, other = p["smtp"], p["user"], p["token"], p["other"]
    seen = {}
    raw = Raw(port)
    raw.line()
    raw.send("EHLO client.example\r\n")
    raw.until("250 ")
    raw.send(f"AUTH XOAUTH2 {b64(xoauth2(user, token))}\r\n")
    seen["auth"] = raw.line()[:3]
    raw.send(f"XCLIENT LOGIN={other}\r\n")
    seen["xclient"] = raw.line()
    raw.send("EHLO client.example\r\n")
    seen["ehlo"] = raw.until("250 ")[-1][:3]
    raw.send(f"XFORWARD ADDR=192.0.2.66 NAME=spoofed.example\r\n")
    seen["xforward"] = raw.line()
    raw.send(f"AUTH XOAUTH2 {b64(xoauth2(user, token))}\r\n")
    seen["second_auth"] = raw.line()
    # A refused DATA (no transaction yet) leaves the session in command mode: the XCLIENT
    # that follows is a command, not message data.
    raw.send("DATA\r\n")
    seen["data_without_mail"] = raw.line()[:3]
    # Pipelined (RFC 2920): the door's refusal comes in its place between the back end's replies.
    raw.send(f"NOOP\r\nXCLIENT LOGIN={other}\r\nMAIL FROM:<{other}>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    seen["pipelined"] = [raw.line()[:3], raw.line(), raw.line()[:3], raw.line()[:3], raw.line()[:3]]
    body = f"From: {other}\r\nTo: bob@example.com\r\nSubject: {p['subject']}\r\n\r\nXCLIENT LOGIN={other}\r\n..leading dot\r\n"
    raw.send(body + ".\r\n")
    seen["message"] = raw.line()[:3]
    raw.send("QUIT\r\n")
    seen["quit"] = raw.line()[:3]
    return seen


def pop3(p):
    port, user, token = p["pop3"], p["user"], p["token"]
    seen = {}
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    seen["capa"] = sorted(client.capa().keys())
    try:
        client.user(user)
    except poplib.error_proto as error:
        seen["user"] = str(error)
    # poplib has no SASL: send AUTH by hand (RFC 5034, initial response).
    response = client._shortcmd(f"AUTH OAUTHBEARER {b64(oauthbearer(user, token, port))}")
    seen["auth"] = response.decode()
    count, size = client.stat()
    seen["stat"] = [count, size]
    client.quit()
    return seen


class IMAPFrom(imaplib.IMAP4):
    """imaplib connecting from a chosen loopback address."""

    def __init__(self, source, port):
        self.source = source
        super().__init__("127.0.0.1", port)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, (self.source, 0))


def addresses(p):
    """Sessions from several loopback addresses, all kept open; each one's answer."""
    port, user, token = p["imap"], p["user"], p["token"]
    seen = {"imap": {}}
    held = []
    for source, count in p["imap_sessions"]:
        results = seen["imap"].setdefault(source, [])
        for _ in range(count):
            imap = IMAPFrom(source, port)
            try:
                imap.authenticate("OAUTHBEARER", lambda _: oauthbearer(user, token, port))
                results.append("OK")
                held.append(imap)
            except imaplib.IMAP4.error as error:
                results.append(str(error))
    pop3 = socket.create_connection(("127.0.0.1", p["pop3"]), 10, (p["pop3_from"], 0))
    lines = pop3.makefile("rwb")
    lines.readline()
    auth = b64(oauthbearer(user, p["pop3_token"], p["pop3"]))
    lines.write(f"AUTH OAUTHBEARER {auth}\r\n".encode())
    lines.flush()
    seen["pop3"] = lines.readline().decode().strip()
    pop3.close()
    smtp = smtplib.SMTP("127.0.0.1", p["smtp"], timeout=10, source_address=(p["smtp_from"], 0))
    smtp.ehlo("client.example")
    code, _ = smtp.docmd("AUTH", f"OAUTHBEARER {b64(oauthbearer(user, p['smtp_token'], p['smtp']))}")
    seen["smtp"] = code
    smtp.quit()
    for imap in held:
        imap.logout()
    return seen


class Forms(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "fields": {}})
        elif tag == "input" and "name" in attrs and self.forms:
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")


def forms(page):
    parser = Forms()
    parser.feed(page)
    return parser.forms


def idle_then_revoke(p):
    """Logs in, starts IDLE, and has the user revoke this device on the devices page; the
    session must get `* BYE` (read with a 5 second limit: the requirement itself)."""
    port, user, token, base = p["imap"], p["user"], p["token"], p["base"]
    seen = {}
    client, _ = imap_login(port, user, token)
    client.select("INBOX")
    tag = client._new_tag().decode()
    client.send(f"{tag} IDLE\r\n".encode())
    seen["idle"] = client.readline().decode().strip()

    browser = requests.Session()
    page = browser.get(f"{base}/account", timeout=10)
    sign_in = forms(page.text)[0]
    sign_in["fields"].update({"address": user, "password": p["password"]})
    page = browser.post(base + sign_in["action"] if sign_in["action"].startswith("/") else sign_in["action"], data=sign_in["fields"], timeout=10)
    page = browser.get(f"{base}/account", timeout=10)
    revoke = [f for f in forms(page.text) if f["action"].endswith("/account/revoke")]
    seen["devices"] = len(revoke)
    revoked_at = time.monotonic()
    answer = browser.post(base + revoke[0]["action"] if revoke[0]["action"].startswith("/") else revoke[0]["action"], data=revoke[0]["fields"], timeout=10)
    seen["revoke_status"] = answer.status_code

    client.sock.settimeout(5)
    try:
        seen["bye"] = client.readline().decode().strip()
        seen["seconds"] = round(time.monotonic() - revoked_at, 2)
    except socket.timeout:
        seen["bye"] = "nothing within 5 seconds"
    seen["closed"] = client.readline() == b""
    # The same token cannot log in again.
    seen["again"] = imap_failure(port, user, token)["error"]
    return seen


def hold(p):
    """Logs in, sits in IDLE, says "ready", and reports the BYE that ends the session."""
    port, user, token = p["imap"], p["user"], p["token"]
    client, _ = imap_login(port, user, token)
    client.select("INBOX")
    tag = client._new_tag().decode()
    client.send(f"{tag} IDLE\r\n".encode())
    client.readline()
    print("ready", flush=True)
    started = time.monotonic()
    client.sock.settimeout(30)
    # Dovecot's keepalives in IDLE ("* OK Still here", RFC 2177 lets a server send untagged
    # responses at any time) are not the end of the session: read on to what ends it.
    while True:
        try:
            line = client.readline().decode().strip()
        except socket.timeout:
            line = "nothing within 30 seconds"
        if not line.startswith("* OK"):
            break
    return {"bye": line, "seconds": round(time.monotonic() - started, 1)}


if __name__ == "__main__":
    scenario, parameters = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(globals()[scenario](parameters)))
